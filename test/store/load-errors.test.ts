// Bad docker-save archives: each fails with an error naming the problem and leaves
// the store as it was (no image, no layer, no overlay2 dir), and nothing is written
// outside the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { ImageStore } from '../../src/store/store.js';
import { loadImages } from '../../src/store/docker-load.js';
import { TsbuildError } from '../../src/errors.js';
import { blockPadding, encodeHeader, END_OF_ARCHIVE } from '../../src/layer/tar-header.js';
import { sha256Digest } from '../../src/image/digest.js';

interface Entry {
  name: string;
  type?: '0' | '2' | '1' | '5';
  body?: Buffer | string;
  linkname?: string;
}

function tarOf(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const type = e.type ?? '0';
    parts.push(encodeHeader({ typeflag: type, name: e.name, linkname: e.linkname ?? '', mode: type === '5' ? 0o40755 : 0o100644, uid: 0, gid: 0, size: type === '0' ? body.length : 0, mtime: 0, uname: '', gname: '', devmajor: 0, devminor: 0 }));
    if (type === '0') parts.push(body, Buffer.alloc(blockPadding(body.length)));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

/** A docker-save archive with one image made of the given layer tars. */
function saveOf(layers: Buffer[], opts: { diffIds?: string[]; extra?: Entry[] } = {}): Buffer {
  const diffIds = opts.diffIds ?? layers.map((l) => sha256Digest(l));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds }, history: [] }));
  const configName = `${sha256Digest(config).slice(7)}.json`;
  const manifest = JSON.stringify([{ Config: configName, RepoTags: ['bad:test'], Layers: layers.map((_, i) => `l${i}/layer.tar`) }]);
  return tarOf([
    { name: configName, body: config },
    ...layers.map((l, i) => ({ name: `l${i}/layer.tar`, body: l })),
    { name: 'manifest.json', body: manifest },
    ...(opts.extra ?? []),
  ]);
}

async function expectNothingLoaded(t: { after(fn: () => void): void }, archive: Buffer, message: RegExp): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-bad-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  const store = await ImageStore.open(root);
  await assert.rejects(loadImages(store, Readable.from([archive])), (e: unknown) => {
    assert.ok(e instanceof TsbuildError, `not a TsbuildError: ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
  assert.deepEqual(await store.list(), []);
  assert.deepEqual(await store.layers.list(), []);
  assert.deepEqual(readdirSync(join(root, 'overlay2')), ['l']);
  assert.deepEqual(readdirSync(join(root, 'overlay2', 'l')), []);
  assert.deepEqual(readdirSync(join(root, 'tsbuild-tmp')), []);
  assert.deepEqual(readdirSync(dir), ['root']);
  assert.equal(existsSync(join(dir, 'evil')), false);
}

const good = tarOf([{ name: 'etc/', type: '5' }, { name: 'etc/hello', body: 'hi\n' }]);

test('a good archive loads (plain and gzip), as a baseline', async (t) => {
  for (const archive of [saveOf([good]), gzipSync(saveOf([gzipSync(good)], { diffIds: [sha256Digest(good)] }))]) {
    const dir = mkdtempSync(join(tmpdir(), 'tsbuild-good-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const store = await ImageStore.open(join(dir, 'root'));
    const [loaded] = await loadImages(store, Readable.from([archive]));
    assert.deepEqual(loaded?.refs, ['bad:test']);
    assert.equal((await store.layers.list())[0]?.diffId, sha256Digest(good));
  }
});

test('a truncated archive', async (t) => {
  const archive = saveOf([good]);
  await expectNothingLoaded(t, archive.subarray(0, 1536 + 100), /truncated/);
});

test('a corrupt header', async (t) => {
  const archive = Buffer.from(saveOf([good]));
  archive[0] = archive[0]! ^ 0xff;
  await expectNothingLoaded(t, archive, /corrupt archive|checksum/);
});

test('a layer whose diffID does not match', async (t) => {
  const other = tarOf([{ name: 'x', body: 'x' }]);
  await expectNothingLoaded(t, saveOf([good, other], { diffIds: [sha256Digest(good), sha256Digest('something else')] }), /invalid diffID for layer/);
});

test('layers count not matching diff_ids', async (t) => {
  await expectNothingLoaded(t, saveOf([good], { diffIds: [sha256Digest(good), sha256Digest(good)] }), /layers length mismatch/);
});

test('a layer entry escaping with ..', async (t) => {
  await expectNothingLoaded(t, saveOf([tarOf([{ name: '../../../evil', body: 'x' }])]), /\.\.\/\.\.\/\.\.\/evil|outside/);
});

test('a layer entry with an absolute path', async (t) => {
  await expectNothingLoaded(t, saveOf([tarOf([{ name: '/evil', body: 'x' }])]), /evil/);
});

test('a layer writing through a symlink that points outside', async (t) => {
  await expectNothingLoaded(t, saveOf([tarOf([{ name: 'a', type: '2', linkname: '/' }, { name: 'a/evil', body: 'x' }])]), /a\/evil/);
});

test('a hardlink to a file outside the layer', async (t) => {
  await expectNothingLoaded(t, saveOf([tarOf([{ name: 'h', type: '1', linkname: '../../evil' }])]), /h|outside/);
});

test('an archive entry outside the archive', async (t) => {
  await expectNothingLoaded(t, saveOf([good], { extra: [{ name: '../evil', body: 'x' }] }), /outside the archive/);
});

test('a second image failing leaves the first layer of this load out too', async (t) => {
  await expectNothingLoaded(t, saveOf([good, tarOf([{ name: '../x', body: 'x' }])]), /outside|\.\.\/x/);
});
