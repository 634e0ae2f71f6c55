/**
 * The e2e harness's own reader and comparator (test/support/e2e-layers.ts) on a
 * hand-made overlay upper dir: whiteouts, opaque dirs, hardlinks (files and fifos),
 * symlinks, devices, special modes, owners, xattrs, and the mtime rules.
 * Needs root (mknod, chown, trusted.* xattrs) and getfattr/setfattr (package attr).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, lutimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareTrees, describeTree, type LayerEntry } from '../support/e2e-layers.js';

function tool(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip =
  process.platform !== 'linux' || process.getuid?.() !== 0
    ? 'needs root on Linux'
    : !tool('getfattr') || !tool('setfattr') || !tool('mknod') || !tool('mkfifo')
      ? 'needs getfattr/setfattr (package attr), mknod and mkfifo'
      : undefined;

test('describeTree and compareTrees on an overlay-style upper dir', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-e2e-layers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const at = (p: string): string => join(dir, p);

  writeFileSync(at('file'), 'hello\n');
  linkSync(at('file'), at('hard'));
  symlinkSync('file', at('sym'));
  execFileSync('mkfifo', [at('fifo')]);
  linkSync(at('fifo'), at('fifo-hard'));
  mkdirSync(at('opaque'));
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', at('opaque')]);
  // overlayfs bookkeeping is no part of a layer
  execFileSync('setfattr', ['-n', 'trusted.overlay.origin', '-v', '0sAAE=', at('opaque')]);
  execFileSync('mknod', [at('gone'), 'c', '0', '0']);
  execFileSync('mknod', [at('null'), 'c', '1', '3']);
  writeFileSync(at('suid'), 'x');
  chownSync(at('suid'), 1000, 65534); // before chmod: chown clears setuid, even as root
  chmodSync(at('suid'), 0o4755);
  mkdirSync(at('a b'));
  writeFileSync(at('a b/é\nx'), '');
  execFileSync('setfattr', ['-n', 'user.k', '-v', 'v', at('a b/é\nx')]);
  const fixed = new Date(1_600_000_000 * 1000);
  for (const p of ['file', 'fifo', 'opaque', 'gone', 'null', 'suid', 'a b', 'a b/é\nx']) utimesSync(at(p), fixed, fixed);
  lutimesSync(at('sym'), fixed, fixed);

  const tree = await describeTree(dir);
  const by = new Map(tree.map((e) => [e.path, e]));
  assert.deepEqual(
    tree.map((e) => e.path),
    ['a b', 'a b/é\nx', 'fifo', 'fifo-hard', 'file', 'gone', 'hard', 'null', 'opaque', 'suid', 'sym'],
  );
  assert.deepEqual(by.get('file'), {
    path: 'file',
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 6,
    sha256: '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03',
    hardlinkOf: 'file',
    xattrs: {},
    mtime: 1_600_000_000,
  } satisfies LayerEntry);
  assert.equal(by.get('hard')?.hardlinkOf, 'file');
  assert.equal(by.get('fifo')?.type, 'fifo');
  assert.equal(by.get('fifo-hard')?.hardlinkOf, 'fifo');
  assert.equal(by.get('sym')?.linkTarget, 'file');
  assert.equal(by.get('sym')?.hardlinkOf, undefined);
  assert.deepEqual(by.get('opaque')?.xattrs, { 'trusted.overlay.opaque': '79' });
  assert.equal(by.get('gone')?.type, 'whiteout');
  assert.equal(by.get('null')?.type, 'char');
  assert.equal(by.get('null')?.rdev, '1:3');
  assert.equal(by.get('suid')?.mode, 0o4755);
  assert.equal(by.get('suid')?.uid, 1000);
  assert.equal(by.get('suid')?.gid, 65534);
  assert.deepEqual(by.get('a b/é\nx')?.xattrs, { 'user.k': '76' });

  assert.deepEqual(compareTrees(tree, tree), []);

  // Differences, one line per path.
  const changed = tree.map((e) => ({ ...e, xattrs: { ...e.xattrs } }));
  const ch = (p: string): LayerEntry => changed.find((e) => e.path === p)!;
  ch('suid').mode = 0o755;
  ch('file').mtime += 1;
  ch('opaque').xattrs = {};
  const diffs = compareTrees(tree, changed.filter((e) => e.path !== 'hard'));
  assert.equal(diffs.length, 4, diffs.join('\n'));
  assert.match(diffs.find((d) => d.startsWith('~ /suid'))!, /mode 04755 ≠ 0755/);
  assert.match(diffs.find((d) => d.startsWith('~ /file'))!, /mtime 1600000000/);
  assert.match(diffs.find((d) => d.startsWith('~ /opaque'))!, /xattrs/);
  assert.match(diffs.find((d) => d.startsWith('- /hard'))!, /only in docker's layer/);

  // mtime rules: 'ignore' and a predicate over docker's entry.
  const onlyTime = tree.map((e) => ({ ...e, mtime: e.mtime + 5 }));
  assert.equal(compareTrees(tree, onlyTime).length, tree.length);
  assert.deepEqual(compareTrees(tree, onlyTime, { mtime: 'ignore' }), []);
  assert.deepEqual(compareTrees(tree, onlyTime, { mtime: (e) => e.mtime < 1_600_000_000 }), []);
  assert.deepEqual(
    compareTrees(tree, onlyTime, { mtime: (e) => e.type === 'dir' }).map((d) => d.split(':')[0]),
    ['~ /a b', '~ /opaque'],
  );
});
