import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type { DiffId } from '../../src/image/digest.js';
import { utf8ToBStr } from '../../src/layer/bytes.js';
import { LayerError } from '../../src/layer/errors.js';
import { applyLayer } from '../../src/layer/reader.js';
import { tarSplitLines } from '../../src/layer/tar-split.js';
import { writeLayer } from '../../src/layer/writer.js';
import { tarOf } from './tar-build.js';
import { CASES, FIXTURES, SKIP_FS, SKIP_ROOT, TEST_NAMES, tempDir } from './trees.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function xattr(path: string, name: string): string | undefined {
  try {
    const raw = execFileSync('getfattr', ['-h', '--only-values', '-n', name, path], { stdio: ['ignore', 'pipe', 'ignore'] });
    return `0x${raw.toString('hex')}`;
  } catch {
    return undefined;
  }
}

for (const name of Object.keys(CASES)) {
  test(`round trip: golden ${name} → applyLayer → writeLayer gives the same bytes`, { skip: SKIP_FS }, async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const golden = readFileSync(join(FIXTURES, `${name}.tar`));
      const diff = join(dir, 'diff');
      const r = await applyLayer(createReadStream(join(FIXTURES, `${name}.tar`)), diff, { expectDiffId: sha(golden) as DiffId });
      assert.equal(r.diffId, sha(golden));
      const w = await writeLayer(diff, { users: TEST_NAMES });
      assert.equal(w.diffId, r.diffId);
      assert.equal(w.size, r.size);
      assert.deepEqual(tarSplitLines(w.tarSplit), tarSplitLines(r.tarSplit));
    } finally {
      await cleanup();
    }
  });
}

test('overlay specials come back: whiteouts as 0/0 char devices, opaque xattr, capability, devices, modes', { skip: SKIP_FS }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const diff = join(dir, 'diff');
    const r = await applyLayer(createReadStream(join(FIXTURES, 'overlay.tar')), diff);
    assert.equal(r.size, 10); // "kept\n" + "ELF?\n"
    for (const wh of ['deleted', 'opaque/zgone']) {
      const st = await lstat(join(diff, wh));
      assert.ok(st.isCharacterDevice(), wh);
      assert.equal(st.rdev, 0);
      assert.equal(st.mode & 0o7777, 0);
      assert.equal(st.uid, 0);
    }
    assert.deepEqual((await readdir(diff)).sort(), ['deleted', 'null', 'opaque', 'ping']);
    assert.deepEqual(await readdir(join(diff, 'opaque')), ['kept', 'zgone']);
    assert.equal(xattr(join(diff, 'opaque'), 'trusted.overlay.opaque'), '0x79');
    assert.equal(xattr(join(diff, 'ping'), 'security.capability'), '0x0100000200200000000000000000000000000000');
    const nul = await lstat(join(diff, 'null'));
    assert.ok(nul.isCharacterDevice());
    assert.equal(nul.rdev, (1 << 8) | 3);
    assert.equal(nul.mode & 0o7777, 0o666);
    const opq = await lstat(join(diff, 'opaque'));
    assert.equal(opq.mode & 0o7777, 0o750);
    assert.equal(opq.mtimeMs, 1700000000000);
  } finally {
    await cleanup();
  }
});

test('basic tree: owners, setuid, hardlinks, fifo, symlink and directory times are restored', { skip: SKIP_ROOT }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const diff = join(dir, 'diff');
    await applyLayer(createReadStream(join(FIXTURES, 'basic.tar')), diff);
    const tool = await lstat(join(diff, 'bin/tool'));
    assert.equal(tool.mode & 0o7777, 0o4755);
    const conf = await lstat(join(diff, 'etc/deep/er/conf'));
    assert.deepEqual([conf.uid, conf.gid, conf.mode & 0o7777], [4242, 4343, 0o600]);
    const h1 = await lstat(join(diff, 'hello.txt'));
    const h2 = await lstat(join(diff, 'hello2.txt'));
    assert.equal(h1.ino, h2.ino);
    assert.ok((await lstat(join(diff, 'fifo'))).isFIFO());
    assert.equal(await readlink(join(diff, 'link')), 'hello.txt');
    assert.equal((await lstat(join(diff, 'link'))).mtimeMs, 1700000000000);
    assert.equal((await lstat(join(diff, 'etc/deep/er'))).mtimeMs, 1600000000000);
    assert.equal((await lstat(join(diff, 'tmp'))).mode & 0o7777, 0o1777);
    assert.equal((await lstat(join(diff, 'etc'))).mode & 0o7777, 0o2755);
  } finally {
    await cleanup();
  }
});

test('gzip input: extracted, diffID of the uncompressed tar', { skip: SKIP_ROOT }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const golden = readFileSync(join(FIXTURES, 'basic.tar'));
    const r = await applyLayer(Readable.from([gzipSync(golden)]), join(dir, 'diff'));
    assert.equal(r.diffId, sha(golden));
    assert.equal(await readFile(join(dir, 'diff/hello.txt'), 'utf8'), 'hello\n');
  } finally {
    await cleanup();
  }
});

test('a wrong expected diffID is the error docker load gives', { skip: SKIP_ROOT }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const tar = tarOf([{ h: { name: 'f' }, data: 'x' }]);
    const expect = `sha256:${'1'.repeat(64)}` as DiffId;
    await assert.rejects(applyLayer(Readable.from([tar]), join(dir, 'diff'), { expectDiffId: expect }), (e: unknown) => {
      assert.ok(e instanceof LayerError);
      assert.equal(e.message, `invalid diffID for layer: expected ${expect}, got ${sha(tar)}`);
      return true;
    });
  } finally {
    await cleanup();
  }
});

test('implicit parents are created 0755 root; an absolute hardlink target is layer-relative', { skip: SKIP_ROOT }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const diff = join(dir, 'diff');
    const tar = tarOf([
      { h: { name: 'a/b/c.txt', uid: 7 }, data: 'c' },
      { h: { name: 'a/b/hard', typeflag: '1', linkname: '/a/b/c.txt' } },
      { h: { name: './', typeflag: '5', mode: 0o40700 } }, // the root entry is ignored, as dockerd does
    ]);
    await applyLayer(Readable.from([tar]), diff);
    const a = await lstat(join(diff, 'a'));
    assert.deepEqual([a.mode & 0o7777, a.uid], [0o755, 0]);
    assert.equal((await lstat(join(diff, 'a/b/hard'))).ino, (await lstat(join(diff, 'a/b/c.txt'))).ino);
    assert.equal((await lstat(diff)).mode & 0o7777, 0o755);
  } finally {
    await cleanup();
  }
});

/** Hostile tars: each must be refused naming the entry, with nothing written outside `target`. */
const HOSTILE: Array<{ title: string; tar: (outside: string) => Buffer; entry: string; message: RegExp }> = [
  { title: '../x', tar: () => tarOf([{ h: { name: '../x' }, data: 'pwned' }]), entry: '../x', message: /escapes/ },
  { title: 'a/../../x', tar: () => tarOf([{ h: { name: 'a/../../x' }, data: 'pwned' }]), entry: 'a/../../x', message: /escapes/ },
  { title: '/abs', tar: () => tarOf([{ h: { name: '/abs' }, data: 'pwned' }]), entry: '/abs', message: /absolute/ },
  {
    title: 'symlink a -> /etc, then a/passwd',
    tar: () => tarOf([{ h: { name: 'a', typeflag: '2', linkname: '/etc' } }, { h: { name: 'a/passwd' }, data: 'pwned::0:0::/:/bin/sh\n' }]),
    entry: 'a/passwd',
    message: /symlink/,
  },
  {
    title: 'symlink to an outside dir, then a file through it',
    tar: (outside) => tarOf([{ h: { name: 'd', typeflag: '2', linkname: outside } }, { h: { name: 'd/x' }, data: 'pwned' }]),
    entry: 'd/x',
    message: /symlink/,
  },
  {
    title: 'implicit dir replaced by a symlink, then a dir through it',
    tar: () =>
      tarOf([
        { h: { name: 'p/q/file' }, data: 'ok' },
        { h: { name: 'p', typeflag: '2', linkname: '../outside' } },
        { h: { name: 'p/q/', typeflag: '5' } },
      ]),
    entry: 'p/q/',
    message: /symlink/,
  },
  {
    title: 'hardlink to ../../x',
    tar: () => tarOf([{ h: { name: 'h', typeflag: '1', linkname: '../../x' } }]),
    entry: 'h',
    message: /outside the layer/,
  },
  {
    title: 'hardlink through a symlink',
    tar: (outside) => tarOf([{ h: { name: 's', typeflag: '2', linkname: outside } }, { h: { name: 'h', typeflag: '1', linkname: 's/secret' } }]),
    entry: 'h',
    message: /symlink/,
  },
  {
    title: 'whiteout through a symlink',
    tar: (outside) => tarOf([{ h: { name: 's', typeflag: '2', linkname: outside } }, { h: { name: 's/.wh.secret' } }]),
    entry: 's/.wh.secret',
    message: /symlink/,
  },
  {
    title: 'truncated archive',
    tar: () => tarOf([{ h: { name: 'ok' }, data: 'fine' }, { h: { name: 'big' }, data: Buffer.alloc(2000, 1) }]).subarray(0, 512 * 4),
    entry: 'big',
    message: /truncated/,
  },
];

for (const h of HOSTILE) {
  test(`hostile tar refused: ${h.title}`, { skip: SKIP_ROOT }, async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const outside = join(dir, 'outside');
      await mkdir(outside);
      await writeFile(join(outside, 'secret'), 'secret');
      const passwd = readFileSync('/etc/passwd');
      const target = join(dir, 'target');
      await assert.rejects(applyLayer(Readable.from([h.tar(outside)]), target), (e: unknown) => {
        assert.ok(e instanceof LayerError, String(e));
        assert.equal(e.entry, h.entry);
        assert.ok(e.message.includes(JSON.stringify(h.entry)), e.message);
        assert.match(e.message, h.message);
        return true;
      });
      assert.deepEqual((await readdir(dir)).sort(), ['outside', 'target']);
      assert.deepEqual(await readdir(outside), ['secret']);
      assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'secret');
      assert.ok(readFileSync('/etc/passwd').equals(passwd));
    } finally {
      await cleanup();
    }
  });
}

test('a whiteout for a path that exists, and duplicate entries, are errors', { skip: SKIP_ROOT }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await assert.rejects(applyLayer(Readable.from([tarOf([{ h: { name: 'x' } }, { h: { name: '.wh.x' } }])]), join(dir, 'a')), /already exists/);
    await assert.rejects(applyLayer(Readable.from([tarOf([{ h: { name: 'x/', typeflag: '5' } }, { h: { name: 'x' } }])]), join(dir, 'b')), /duplicates/);
    await assert.rejects(applyLayer(Readable.from([tarOf([{ h: { name: '.wh..' } }])]), join(dir, 'c')), /invalid whiteout/);
  } finally {
    await cleanup();
  }
});

test('non-UTF-8 and PAX names extract to the exact bytes', { skip: SKIP_ROOT }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const diff = join(dir, 'diff');
    const long = `${'d'.repeat(200)}/${utf8ToBStr('fïle')}`;
    await applyLayer(Readable.from([tarOf([{ h: { name: 'bad\xff' }, data: 'b' }, { h: { name: long }, data: 'l' }])]), diff);
    const names = await readdir(diff, { encoding: 'buffer' });
    assert.ok(names.some((n) => n.equals(Buffer.from([0x62, 0x61, 0x64, 0xff]))));
    assert.equal(await readFile(join(diff, 'd'.repeat(200), 'fïle'), 'utf8'), 'l');
  } finally {
    await cleanup();
  }
});

test('archive xattrs: security.capability applied, trusted.overlay.* ignored, EPERM on a symlink tolerated', { skip: SKIP_FS }, async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const diff = join(dir, 'diff');
    const caps = Buffer.from('0100000200200000000000000000000000000000', 'hex').toString('latin1');
    await applyLayer(
      Readable.from([
        tarOf([
          { h: { name: 'bin', xattrs: new Map([['security.capability', caps]]) }, data: 'x' },
          { h: { name: 'evil/', typeflag: '5', xattrs: new Map([['trusted.overlay.opaque', 'y']]) } },
          { h: { name: 'sym', typeflag: '2', linkname: 'bin', xattrs: new Map([['user.note', 'hi']]) } },
        ]),
      ]),
      diff,
    );
    assert.equal(xattr(join(diff, 'bin'), 'security.capability'), '0x0100000200200000000000000000000000000000');
    assert.equal(xattr(join(diff, 'evil'), 'trusted.overlay.opaque'), undefined);
  } finally {
    await cleanup();
  }
});
