// The copy snapshotter's parts: applying layer dirs onto a plain dir (whiteouts, opaque dirs, type
// changes, attributes), the tree diff written as an overlay upper dir, the init layer's mount
// points, the selection, and a RUN on a plain dir through the namespace sandbox.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyLayer, ensureMountPoints } from '../../src/snapshot/copy-apply.js';
import { chooseSnapshotter, overlayWorks, prepareCopySnapshot, snapshotterFromEnv } from '../../src/snapshot/copy.js';
import { NamespaceSandbox } from '../../src/sandbox/namespace.js';
import { collector, makeFixture } from '../sandbox/fixture.js';

const skip = process.getuid?.() !== 0 ? 'needs root (owners, device nodes, trusted.* xattrs)' : undefined;
const tree = (d: string) => (readdirSync(d, { recursive: true }) as string[]).map(String).sort();
const mode = (p: string) => lstatSync(p).mode & 0o7777;
const T0 = new Date('2024-01-01T00:00:00Z');
const T1 = new Date('2024-06-01T12:00:00.5Z');

function getfattr(p: string, name: string): string | undefined {
  try {
    return execFileSync('getfattr', ['--absolute-names', '--only-values', '-h', '-n', name, p], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}
const setfattr = (p: string, name: string, value: string) => execFileSync('setfattr', ['-h', '-n', name, '-v', value, p]);
const whiteout = (p: string) => execFileSync('mknod', ['-m', '0', p, 'c', '0', '0']);
const isWhiteout = (p: string) => {
  const st = lstatSync(p);
  return st.isCharacterDevice() && st.rdev === 0;
};

describe('copy snapshotter', { skip }, () => {
  let dir: string;
  let n = 0;
  const fresh = (name: string) => {
    const d = join(dir, `${name}-${++n}`);
    mkdirSync(d, { mode: 0o755 });
    return d;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsbuild-copy-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A bottom layer with a bit of everything, and a top layer that deletes, replaces and merges. */
  function twoLayers(): { lower: string; upper: string } {
    const lower = fresh('lower');
    mkdirSync(join(lower, 'etc'));
    writeFileSync(join(lower, 'etc/keep'), 'keep\n');
    writeFileSync(join(lower, 'etc/gone'), 'gone\n');
    mkdirSync(join(lower, 'opq/sub'), { recursive: true });
    writeFileSync(join(lower, 'opq/old'), 'old\n');
    mkdirSync(join(lower, 'dir2file'));
    writeFileSync(join(lower, 'dir2file/x'), 'x\n');
    writeFileSync(join(lower, 'file2dir'), 'f\n');
    mkdirSync(join(lower, 'deldir/deep'), { recursive: true });
    writeFileSync(join(lower, 'suid'), '#!/bin/sh\n');
    chownSync(join(lower, 'suid'), 1000, 50);
    chmodSync(join(lower, 'suid'), 0o4755);
    writeFileSync(join(lower, 'a'), 'linked\n');
    linkSync(join(lower, 'a'), join(lower, 'b'));
    symlinkSync('/etc/keep', join(lower, 'abs-link'));
    execFileSync('mkfifo', [join(lower, 'fifo')]);
    execFileSync('mknod', [join(lower, 'null'), 'c', '1', '3']);
    setfattr(join(lower, 'etc/keep'), 'user.note', 'hello');
    setfattr(join(lower, 'suid'), 'security.capability', '0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=');
    utimesSync(join(lower, 'etc/keep'), T1, T1);
    utimesSync(join(lower, 'etc'), T0, T0);

    const upper = fresh('upper');
    mkdirSync(join(upper, 'etc'));
    whiteout(join(upper, 'etc/gone'));
    writeFileSync(join(upper, 'etc/new'), 'new\n');
    utimesSync(join(upper, 'etc'), T1, T1);
    mkdirSync(join(upper, 'opq'));
    setfattr(join(upper, 'opq'), 'trusted.overlay.opaque', 'y');
    writeFileSync(join(upper, 'opq/fresh'), 'fresh\n');
    writeFileSync(join(upper, 'dir2file'), 'now a file\n');
    mkdirSync(join(upper, 'file2dir'));
    writeFileSync(join(upper, 'file2dir/in'), 'in\n');
    whiteout(join(upper, 'deldir'));
    return { lower, upper };
  }

  test('applying layers: whiteouts, opaque dirs, type changes, attributes, no hard links, no overlay xattrs', async () => {
    const { lower, upper } = twoLayers();
    const root = fresh('root');
    await applyLayer(lower, root);
    await applyLayer(upper, root);
    assert.deepEqual(tree(root), [
      'a',
      'abs-link',
      'b',
      'dir2file',
      'etc',
      'etc/keep',
      'etc/new',
      'fifo',
      'file2dir',
      'file2dir/in',
      'null',
      'opq',
      'opq/fresh',
      'suid',
    ]);
    assert.equal(readFileSync(join(root, 'dir2file'), 'utf8'), 'now a file\n');
    assert.equal(readlinkSync(join(root, 'abs-link')), '/etc/keep');
    assert.ok(lstatSync(join(root, 'fifo')).isFIFO());
    const nul = lstatSync(join(root, 'null'));
    assert.ok(nul.isCharacterDevice() && nul.rdev === lstatSync('/dev/null').rdev);
    const suid = lstatSync(join(root, 'suid'));
    assert.deepEqual([mode(join(root, 'suid')), suid.uid, suid.gid], [0o4755, 1000, 50]);
    assert.equal(getfattr(join(root, 'suid'), 'security.capability') !== undefined, true, 'file capability kept');
    assert.equal(getfattr(join(root, 'etc/keep'), 'user.note'), 'hello');
    assert.equal(lstatSync(join(root, 'etc/keep')).mtimeMs, T1.getTime(), 'sub-second mtime kept');
    assert.equal(lstatSync(join(root, 'etc')).mtimeMs, T1.getTime(), 'a merged dir takes the upper attributes');
    assert.equal(getfattr(join(root, 'opq'), 'trusted.overlay.opaque'), undefined, 'no overlay xattr in the rootfs');
    assert.equal(lstatSync(join(root, 'a')).nlink, 1, 'hard links are broken like overlay copy-up');
    assert.notEqual(lstatSync(join(root, 'a')).ino, lstatSync(join(lower, 'a')).ino, 'a copy, never a link to the layer');
  });

  test('a layer dir over a symlink in the rootfs replaces it, never writes through it', async () => {
    const outside = fresh('outside');
    const root = fresh('root');
    symlinkSync(outside, join(root, 'lib'));
    const layer = fresh('layer');
    mkdirSync(join(layer, 'lib'));
    writeFileSync(join(layer, 'lib/x'), 'x\n');
    await applyLayer(layer, root);
    assert.ok(lstatSync(join(root, 'lib')).isDirectory());
    assert.deepEqual(readdirSync(outside), []);
  });

  test('the tree diff is what overlay would have in its upper dir', async () => {
    const { lower, upper } = twoLayers();
    const snap = await prepareCopySnapshot([upper, lower], { tmpDir: dir });
    try {
      const r = snap.dir;
      const etcMtime = lstatSync(join(r, 'etc')).mtimeMs;
      writeFileSync(join(r, 'created'), 'c\n'); // new file
      rmSync(join(r, 'etc/keep')); // delete an image file
      rmSync(join(r, 'opq'), { recursive: true }); // replace a dir wholesale
      mkdirSync(join(r, 'opq'));
      writeFileSync(join(r, 'opq/other'), 'o\n');
      rmSync(join(r, 'file2dir'), { recursive: true }); // delete a dir
      chmodSync(join(r, 'suid'), 0o755); // attributes only
      writeFileSync(join(r, 'a'), 'changed\n'); // the other name must not follow
      linkSync(join(r, 'created'), join(r, 'created-link')); // links the step makes are kept
      mkdirSync(join(r, 'newdir/deeper'), { recursive: true });
      const out = fresh('diff');
      const stats = await snap.diff(out);
      assert.deepEqual(tree(out), ['a', 'created', 'created-link', 'etc', 'etc/keep', 'file2dir', 'newdir', 'newdir/deeper', 'opq', 'opq/other', 'suid']);
      assert.ok(isWhiteout(join(out, 'etc/keep')));
      assert.ok(isWhiteout(join(out, 'file2dir')));
      assert.equal(lstatSync(join(out, 'etc/keep')).ino, lstatSync(join(out, 'file2dir')).ino, 'one shared whiteout inode, as overlay makes them');
      assert.equal(getfattr(join(out, 'opq'), 'trusted.overlay.opaque'), 'y');
      assert.equal(getfattr(join(out, 'newdir'), 'trusted.overlay.opaque'), undefined);
      assert.equal(mode(join(out, 'suid')), 0o755);
      assert.equal(readFileSync(join(out, 'a'), 'utf8'), 'changed\n');
      assert.equal(lstatSync(join(out, 'created')).ino, lstatSync(join(out, 'created-link')).ino);
      assert.equal(lstatSync(join(out, 'etc')).mtimeMs, lstatSync(join(r, 'etc')).mtimeMs);
      assert.notEqual(lstatSync(join(out, 'etc')).mtimeMs, etcMtime, 'etc changed: its new mtime');
      assert.deepEqual(stats, { copied: 9, whiteouts: 2, opaque: 1 });
    } finally {
      await snap.dispose();
    }
  });

  test('an unchanged rootfs gives an empty diff; parents of a change keep their attributes', async () => {
    const { lower, upper } = twoLayers();
    const snap = await prepareCopySnapshot([upper, lower], { tmpDir: dir, init: true });
    try {
      const out = fresh('diff');
      assert.deepEqual(await snap.diff(out), { copied: 0, whiteouts: 0, opaque: 0 });
      assert.deepEqual(readdirSync(out), []);
      for (const p of ['.dockerenv', 'proc', 'sys', 'dev/pts', 'dev/shm', 'etc/hosts', 'etc/resolv.conf', 'etc/hostname']) assert.ok(existsSync(join(snap.dir, p)), p);
      writeFileSync(join(snap.dir, 'etc/keep'), 'edited\n');
      const out2 = fresh('diff');
      await snap.diff(out2);
      assert.deepEqual(tree(out2), ['etc', 'etc/keep']);
      assert.equal(lstatSync(join(out2, 'etc')).mtimeMs, T1.getTime(), 'copied-up parent: unchanged mtime');
      assert.equal(getfattr(join(out2, 'etc/keep'), 'user.note'), 'hello');
    } finally {
      await snap.dispose();
    }
    assert.equal(existsSync(snap.dir), false);
  });

  test('ensureMountPoints creates what is missing and refuses a symlinked /etc', async () => {
    const root = fresh('root');
    await ensureMountPoints(root);
    assert.deepEqual(tree(root), ['.dockerenv', 'dev', 'dev/console', 'dev/pts', 'dev/shm', 'etc', 'etc/hostname', 'etc/hosts', 'etc/mtab', 'etc/resolv.conf', 'proc', 'sys']);
    await ensureMountPoints(root); // idempotent
    const bad = fresh('bad');
    symlinkSync(fresh('host-etc'), join(bad, 'etc'));
    await assert.rejects(ensureMountPoints(bad), /not a directory/);
  });

  test('selection: TSBUILD_SNAPSHOTTER, else a probe (overlay works here)', async () => {
    assert.equal(snapshotterFromEnv({}), undefined);
    assert.equal(snapshotterFromEnv({ TSBUILD_SNAPSHOTTER: 'copy' }), 'copy');
    assert.equal(snapshotterFromEnv({ TSBUILD_SNAPSHOTTER: 'auto' }), undefined);
    assert.throws(() => snapshotterFromEnv({ TSBUILD_SNAPSHOTTER: 'vfs' }), /overlay, copy or auto/);
    assert.equal(await chooseSnapshotter(dir, undefined, { TSBUILD_SNAPSHOTTER: 'copy' }), 'copy');
    assert.equal(await chooseSnapshotter(dir, 'overlay', { TSBUILD_SNAPSHOTTER: 'copy' }), 'overlay');
    const works = await overlayWorks(dir);
    assert.equal(await chooseSnapshotter(dir, undefined, {}), works ? 'overlay' : 'copy');
    const colon = fresh('with:colon');
    assert.equal(await overlayWorks(colon), false, 'overlay options cannot name a path with ":"');
    assert.equal(await chooseSnapshotter(colon, undefined, {}), 'copy');
    assert.equal(readdirSync(dir).filter((d) => d.startsWith('overlay-probe-')).length, 0);
    assert.deepEqual(readdirSync(colon), []);
  });

  test('a RUN on a plain dir with the namespace sandbox, then the diff', async () => {
    const fx = await makeFixture();
    try {
      const snap = await prepareCopySnapshot([fx.lower], { tmpDir: dir, init: true });
      try {
        const c = collector();
        const spec = fx.spec({ args: ['/bin/sh', '-c', 'echo $$; rm /etc/deleteme; echo hi > /x; cat /etc/hostname'], cwd: '/made/here', ...c });
        const r = await new NamespaceSandbox({ tmpDir: fx.tmp }).run({ ...spec, rootfs: { ...spec.rootfs, plainDir: snap.dir } });
        assert.equal(r.exitCode, 0, r.stderrTail);
        assert.equal(c.out(), '1\ntsbuild-test\n');
        const out = fresh('diff');
        await snap.diff(out);
        assert.deepEqual(tree(out), ['etc', 'etc/deleteme', 'made', 'made/here', 'x']);
        assert.ok(isWhiteout(join(out, 'etc/deleteme')));
        assert.deepEqual(readdirSync(fx.tmp), []);
        assert.deepEqual(
          readFileSync('/proc/self/mountinfo', 'utf8')
            .split('\n')
            .filter((l) => l.includes(dir)),
          [],
        );
      } finally {
        await snap.dispose();
      }
    } finally {
      fx.cleanup();
    }
  });
});
