/**
 * writeLayer against golden tars (test/fixtures/layer/<case>.tar, trees in trees.ts).
 *
 * How the goldens were verified (once, on Debian 12 as root, 2026-11):
 * 1. Go: a throwaway program (in /tmp, not in the repo) walked the same trees the way moby 20.10's
 *    pkg/archive TarWithOptions does with the overlay whiteout converter — archive/tar (Go 1.19)
 *    FileInfoHeader, Format=FormatPAX, ModTime truncated to seconds, access/change times cleared,
 *    file-type bits added, hardlinks by inode, char 0/0 → `.wh.<name>` mode 0600, opaque dir →
 *    `<dir>/.wh..wh..opq` header, security.capability v3 → v2 — and its output was byte-identical
 *    (same sha256) to every golden here. (Non-root uid/gid 4242/4343 have no names on that host,
 *    as in TEST_NAMES.)
 * 2. tar-split 0.11.2 (Debian package): `tar-split asm --input <our tar-split.json.gz> --path <tree>`
 *    reproduced each golden's sha256, and `tar-split disasm` of each golden produced JSON lines
 *    identical to ours. The CLI part is re-checked below whenever `tar-split` is installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, symlink, writeFile, link } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { EMPTY_LAYER_DIFF_ID } from '../../src/image/digest.js';
import { splitTar } from '../../src/layer/reader.js';
import { diffSize } from '../../src/layer/size.js';
import { assembleTar, dirFileContent, readTarSplit, tarSplitLines } from '../../src/layer/tar-split.js';
import { nameLookupFrom } from '../../src/layer/users.js';
import { capabilityForTar, writeLayer, type WriteLayerResult } from '../../src/layer/writer.js';
import { buildTree, CASES, FIXTURES, SKIP_FS, SKIP_TAR_SPLIT, TEST_NAMES, tempDir } from './trees.js';

/** diffIDs of the goldens (also checked against Go and tar-split, see above). */
const GOLDEN: Record<string, { diffId: string; size: number }> = {
  empty: { diffId: EMPTY_LAYER_DIFF_ID, size: 0 },
  basic: { diffId: 'sha256:c4ff90ea5942d529d05d66119193f947d2bc7edcc9844a6aa2dad6d2990058f1', size: 39 },
  names: { diffId: 'sha256:4c99e82fb728ad1e7f8b68e120b079eb3b472896266e2b3654fdedeeb75b356d', size: 132 },
  overlay: { diffId: 'sha256:f66dcede2e721693723f39e79969686d21ef3b217f5f5820d675495e8f70a872', size: 10 },
};

async function writeToBuffer(dir: string, opts: { users?: typeof TEST_NAMES } = {}): Promise<{ r: WriteLayerResult; tar: Buffer }> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const r = await writeLayer(dir, { out, users: opts.users ?? TEST_NAMES });
  out.end();
  return { r, tar: Buffer.concat(chunks) };
}

async function collect(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

for (const name of Object.keys(CASES)) {
  test(`golden tar: ${name}`, { skip: SKIP_FS }, async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const up = join(dir, 'up');
      await buildTree(up, CASES[name] ?? []);
      const { r, tar } = await writeToBuffer(up);
      const goldenPath = join(FIXTURES, `${name}.tar`);
      if (process.env.UPDATE_LAYER_GOLDEN === '1') writeFileSync(goldenPath, tar);
      const golden = readFileSync(goldenPath);
      const want = GOLDEN[name];
      assert.ok(want !== undefined);
      assert.equal(sha(golden), want.diffId, 'golden file digest');
      assert.equal(r.diffId, want.diffId);
      assert.equal(r.tarSize, golden.length);
      assert.ok(tar.equals(golden), 'tar bytes equal the golden');
      assert.equal(r.size, want.size);
      assert.equal(r.size, await diffSize(up));
      assert.equal(r.empty, name === 'empty');
      // The tar-split the writer built equals what reading the tar back records.
      const read = await splitTar(Readable.from([golden]));
      assert.equal(read.diffId, r.diffId);
      assert.deepEqual(tarSplitLines(r.tarSplit), tarSplitLines(read.tarSplit));
      // And reassembles the exact tar from the tree.
      assert.ok((await collect(assembleTar(r.tarSplit, dirFileContent(up)))).equals(golden));
    } finally {
      await cleanup();
    }
  });
}

test('the tar-split CLI reassembles our tars and disassembles them to our JSON', { skip: SKIP_TAR_SPLIT }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    for (const name of Object.keys(CASES)) {
      const up = join(dir, name);
      await buildTree(up, CASES[name] ?? []);
      const { r, tar } = await writeToBuffer(up);
      const ts = join(dir, `${name}.json.gz`);
      writeFileSync(ts, r.tarSplit);
      const asm = spawnSync('tar-split', ['asm', '--input', ts, '--path', up], { maxBuffer: 1 << 26 });
      assert.equal(asm.status, 0, asm.stderr.toString());
      assert.equal(sha(asm.stdout), r.diffId, `${name}: tar-split asm | sha256sum`);
      const tarPath = join(dir, `${name}.tar`);
      const dis = join(dir, `${name}.disasm.json.gz`);
      writeFileSync(tarPath, tar);
      execFileSync('tar-split', ['disasm', '--no-stdout', '--output', dis, tarPath], { stdio: 'ignore' });
      assert.deepEqual(tarSplitLines(readFileSync(dis)), tarSplitLines(r.tarSplit), `${name}: tar-split disasm`);
    }
  } finally {
    await cleanup();
  }
});

test('an empty upper dir is 1024 zero bytes', { skip: SKIP_FS }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const { r, tar } = await writeToBuffer(dir);
    assert.ok(tar.equals(Buffer.alloc(1024)));
    assert.equal(r.diffId, EMPTY_LAYER_DIFF_ID);
    assert.deepEqual(r, { ...r, tarSize: 1024, size: 0, empty: true });
    assert.deepEqual(tarSplitLines(r.tarSplit), [`{"type":2,"payload":"${Buffer.alloc(1024).toString('base64')}","position":0}`, '{"type":2,"payload":"","position":1}']);
  } finally {
    await cleanup();
  }
});

test('non-UTF-8 names, sockets, hardlinked sizes, slow consumers', { skip: SKIP_FS }, async () => {
  const { dir, cleanup } = await tempDir();
  const server = createServer();
  try {
    const up = join(dir, 'up');
    await mkdir(up);
    const bad = Buffer.concat([Buffer.from(`${up}/bad`), Buffer.from([0xff, 0xfe])]);
    await writeFile(bad, 'abc');
    await writeFile(join(up, 'big'), Buffer.alloc(300_000, 7));
    await link(join(up, 'big'), join(up, 'big2'));
    await symlink('0123456789', join(up, 'sym'));
    await new Promise<void>((resolve) => server.listen(join(up, 'sock'), resolve));
    // A consumer with a tiny buffer that drains slowly: the writer must wait for it.
    const chunks: Buffer[] = [];
    const out = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        setImmediate(cb);
      },
    });
    const r = await writeLayer(up, { out, users: TEST_NAMES });
    const tar = Buffer.concat(chunks);
    assert.equal(tar.length, r.tarSize);
    assert.equal(sha(tar), r.diffId);
    assert.equal(r.size, 3 + 300_000 + 10); // hardlinked inode once, symlink by target length
    assert.equal(r.size, await diffSize(up));
    const files = readTarSplit(r.tarSplit).flatMap((e) => (e.type === 1 ? [e.name] : []));
    assert.deepEqual(files, ['bad\xff\xfe', 'big', 'big2', 'sym']); // the socket is skipped
    assert.ok(tarSplitLines(r.tarSplit).some((l) => l.includes('"name_raw":"YmFk//4="')));
    const link2 = readTarSplit(r.tarSplit).find((e) => e.type === 1 && e.name === 'big2');
    assert.deepEqual(link2 && { size: link2.type === 1 ? link2.size : -1, payload: link2.payload }, { size: 0, payload: null });
  } finally {
    server.close();
    await cleanup();
  }
});

test('errors: not a directory', async () => {
  await assert.rejects(writeLayer('/nonexistent/tsbuild/layer'), /cannot read layer directory/);
  await assert.rejects(writeLayer('/etc/hostname'), /not a directory/);
});

test('capability v3 is rewritten as v2 (20 bytes); v2 is kept', () => {
  const v3 = Buffer.from('0100000300200000000000000000000000000000e8030000', 'hex');
  assert.equal(capabilityForTar(v3).toString('hex'), '0100000200200000000000000000000000000000');
  const v2 = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  assert.equal(capabilityForTar(v2).toString('hex'), v2.toString('hex'));
});

test('name lookup: first matching line, comments and NIS lines skipped', () => {
  const l = nameLookupFrom('#c\n+nis:x:5:5::/:/bin/sh\nroot:x:0:0:root:/root:/bin/bash\nalt:x:0:0::/:/bin/sh\nshort:x:7\n', 'root:x:0:\nwheel:x:10:a,b\n');
  assert.equal(l.user(0), 'root');
  assert.equal(l.user(5), undefined);
  assert.equal(l.user(7), undefined);
  assert.equal(l.group(10), 'wheel');
  assert.equal(l.group(11), undefined);
});

test('a failing output stream fails writeLayer', { skip: SKIP_FS }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await writeFile(join(dir, 'f'), Buffer.alloc(100_000));
    const out = new Writable({
      highWaterMark: 1,
      write(_c, _e, cb) {
        cb(new Error('disk full'));
      },
    });
    await assert.rejects(writeLayer(dir, { out, users: TEST_NAMES }), /writing the layer tar failed/);
  } finally {
    await cleanup();
  }
});

test('many small files: CRCs batched to the CRC thread equal the inline ones, in order', { skip: SKIP_FS }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const up = join(dir, 'up');
    await mkdir(join(up, 'small'), { recursive: true });
    // ≈ 22 MiB in files of 0–130 KiB (the thread takes over after 16 MiB; batches of 512 KiB fill
    // unevenly), a 600 KiB one that no batch holds, and a large one among them.
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0);
    for (let i = 0; i < 340; i++) {
      const n = i === 290 ? 600 << 10 : i === 300 ? (2 << 20) + 5 : next() % (130 << 10);
      const b = Buffer.allocUnsafe(n);
      for (let j = 0; j < n; j++) b[j] = next() >>> 24;
      await writeFile(join(up, 'small', `f${String(i).padStart(3, '0')}`), b);
    }
    const threaded = await writeLayer(up, { users: TEST_NAMES });
    const { r: streamed, tar } = await writeToBuffer(up);
    assert.equal(threaded.diffId, streamed.diffId);
    // The reader computes every CRC from the tar bytes itself, one file at a time.
    const read = await splitTar(Readable.from([tar]));
    assert.deepEqual(tarSplitLines(threaded.tarSplit), tarSplitLines(read.tarSplit));
  } finally {
    await cleanup();
  }
});

test('large files: CRCs from the CRC thread equal the inline ones, in order among small files', { skip: SKIP_FS }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const up = join(dir, 'up');
    await mkdir(join(up, 'big'), { recursive: true });
    const noise = (n: number, seed: number) => {
      const b = Buffer.allocUnsafe(n);
      let x = seed;
      for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
      return b;
    };
    // 16 MiB first (the thread starts after that much), then over and under the thread's 1 MiB, a
    // last chunk shorter than the read size, small files between.
    const sizes = [16 << 20, 1 << 20, 3 * (1 << 20) + 7, 5000, (2 << 20) - 1, 4 * (1 << 20) + 3, 12];
    for (const [i, n] of sizes.entries()) await writeFile(join(up, 'big', `f${i}`), noise(n, i + 1));
    const threaded = await writeLayer(up, { users: TEST_NAMES });
    const { r: inline, tar } = await writeToBuffer(up);
    assert.equal(threaded.diffId, inline.diffId);
    assert.deepEqual(tarSplitLines(threaded.tarSplit), tarSplitLines(inline.tarSplit));
    const read = await splitTar(Readable.from([tar]));
    assert.deepEqual(tarSplitLines(threaded.tarSplit), tarSplitLines(read.tarSplit));
    assert.ok((await collect(assembleTar(threaded.tarSplit, dirFileContent(up)))).equals(tar));
  } finally {
    await cleanup();
  }
});
