import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { detectCompression, extractArchive, isTarArchive } from '../../src/exec/copy-archive.js';
import { d, f, l, listTree, mkTree, tempDir } from '../context/tree-helpers.js';

test('detectCompression: gzip, bzip2, xz magics; anything else is plain', () => {
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 0x08, 0])), 'gzip');
  assert.equal(detectCompression(Buffer.from('BZh91AY')), 'bzip2');
  assert.equal(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1])), 'xz');
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'none'); // zstd: not in 20.10
  assert.equal(detectCompression(Buffer.alloc(0)), 'none');
});

test('isTarArchive: a first valid header, after decompression', async () => {
  const t = tempDir();
  try {
    const p = (n: string): string => join(t.dir, n);
    mkTree(join(t.dir, 'src'), [{ path: 'a', content: 'A' }]);
    execFileSync('tar', ['-cf', p('a.tar'), '-C', join(t.dir, 'src'), 'a']);
    execFileSync('sh', ['-c', `gzip -c '${p('a.tar')}' > '${p('a.tgz')}'; printf hello | gzip > '${p('h.gz')}'`]);
    writeFileSync(p('empty'), '');
    writeFileSync(p('short'), Buffer.alloc(100, 1));
    writeFileSync(p('zeros'), Buffer.alloc(1024));
    writeFileSync(p('junk'), Buffer.alloc(2048, 0x41));
    assert.equal(await isTarArchive(p('a.tar')), true);
    assert.equal(await isTarArchive(p('a.tgz')), true);
    for (const n of ['h.gz', 'empty', 'short', 'zeros', 'junk', 'missing']) assert.equal(await isTarArchive(p(n)), false, n);
  } finally {
    t.cleanup();
  }
});

test('extractArchive: long names (PAX and GNU), merging into existing content, symlinked parents stay inside', async () => {
  const t = tempDir();
  try {
    const long = `${'x'.repeat(120)}/${'y'.repeat(110)}`;
    const src = join(t.dir, 'src');
    mkTree(src, [
      { path: `${long}/f`, content: 'L', mtime: 1500000000 },
      { path: 'dir', type: 'dir', mode: 0o700, mtime: 1500000000 },
      { path: 'dir/new', content: 'N', mtime: 1500000000 },
      { path: 'file', type: 'dir', mode: 0o750, mtime: 1500000000 },
      { path: 'via/x', content: 'V', mtime: 1500000000 },
    ]);
    execFileSync('tar', ['--format=pax', '--numeric-owner', '-cf', join(t.dir, 'pax.tar'), '-C', src, 'x'.repeat(120)]);
    execFileSync('tar', ['--format=gnu', '--numeric-owner', '-cf', join(t.dir, 'gnu.tar'), '-C', src, 'x'.repeat(120)]);
    execFileSync('tar', ['--numeric-owner', '-cf', join(t.dir, 'merge.tar'), '-C', src, 'dir', 'file', 'via/x']);
    const rootfs = join(t.dir, 'rootfs');
    mkTree(rootfs, [
      { path: 'dst/dir', type: 'dir', mode: 0o755 },
      { path: 'dst/dir/old', content: 'O' },
      { path: 'dst/file', content: 'was a file' },
      { path: 'dst/via', type: 'symlink', target: '/target' },
      { path: 'dst/target', type: 'dir' },
    ]);
    await extractArchive(join(t.dir, 'pax.tar'), rootfs, '/p');
    await extractArchive(join(t.dir, 'gnu.tar'), rootfs, '/g');
    assert.deepEqual(listTree(join(rootfs, 'p')).pop(), f(`${long}/f`, 0o644, 'L', { mtime: 1500000000 }));
    assert.deepEqual(listTree(join(rootfs, 'g')).pop(), f(`${long}/f`, 0o644, 'L', { mtime: 1500000000 }));
    await extractArchive(join(t.dir, 'merge.tar'), rootfs, '/dst');
    assert.deepEqual(listTree(join(rootfs, 'dst')), [
      d('dir', 0o700, { mtime: 1500000000 }),
      f('dir/new', 0o644, 'N', { mtime: 1500000000 }),
      f('dir/old', 0o644, 'O'),
      d('file', 0o750, { mtime: 1500000000 }),
      // `via` is a symlink to /target and the tar has only via/x: the chrooted untar writes through
      // the link, inside the destination. (A `via/` entry would have replaced the link by a dir.)
      d('target', 0o755, { mtime: listTree(join(rootfs, 'dst')).find((e) => e.path === 'target')!.mtime }),
      f('target/x', 0o644, 'V', { mtime: 1500000000 }),
      l('via', '/target'),
    ]);
  } finally {
    t.cleanup();
  }
});

test('extractArchive: a missing decompressor is a clear error', async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'a.tbz'), Buffer.concat([Buffer.from('BZh9'), Buffer.alloc(600)]));
    mkdirSync(join(t.dir, 'rootfs'));
    const noTools = ((cmd: string, args: string[], o: object) => spawn(`${cmd}-not-installed`, args, o)) as unknown as typeof spawn;
    await assert.rejects(extractArchive(join(t.dir, 'a.tbz'), join(t.dir, 'rootfs'), '/x', { spawn: noTools }), { message: 'a.tbz: bzip2 not found: install it to ADD bzip2 archives' });
    assert.equal(await isTarArchive(join(t.dir, 'a.tbz'), { spawn: noTools }), false);
  } finally {
    t.cleanup();
  }
});
