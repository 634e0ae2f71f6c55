// COPY straight into the upper dir (snapshot/direct-copy.ts): when it applies, what it copies up,
// and, in real builds, that it gives the same layers and image as the copy through the overlay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { prepareDirectCopy } from '../../src/snapshot/direct-copy.js';
import { runBuild } from '../../src/exec/run-build.js';
import { ImageStore } from '../../src/store/store.js';
import { importRootfs } from '../../src/store/import.js';
import { exampleBusyboxTar, realBuildSkip } from '../support/build-fixture.js';

const asRoot = process.getuid?.() !== 0 ? 'needs root (chown, mknod)' : undefined;

function layers(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-direct-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const top = join(dir, 'top');
  const bottom = join(dir, 'bottom');
  const upper = join(dir, 'upper');
  for (const d of [top, bottom, upper]) mkdirSync(d);
  return { top, bottom, upper, lowers: [top, bottom] };
}

test('a destination new to every layer: nothing to copy up', async (t) => {
  const l = layers(t);
  mkdirSync(join(l.bottom, 'usr'));
  assert.equal(await prepareDirectCopy(l.lowers, l.upper, ['/data']), true);
  assert.deepEqual(readdirSync(l.upper), []);
  // No layers at all (FROM scratch, COPY --link).
  assert.equal(await prepareDirectCopy([], l.upper, ['/a/b']), true);
});

test('existing ancestors are copied up with the top-most layer\'s mode, owner and times', { skip: asRoot }, async (t) => {
  const l = layers(t);
  mkdirSync(join(l.bottom, 'usr/local'), { recursive: true });
  mkdirSync(join(l.top, 'usr'));
  chmodSync(join(l.top, 'usr'), 0o2751);
  chownSync(join(l.top, 'usr'), 12, 34);
  chmodSync(join(l.bottom, 'usr/local'), 0o1750);
  chownSync(join(l.bottom, 'usr/local'), 5, 6);
  utimesSync(join(l.top, 'usr'), 1_600_000_000, 1_600_000_000);
  utimesSync(join(l.bottom, 'usr/local'), 1_500_000_000, 1_500_000_000);
  assert.equal(await prepareDirectCopy(l.lowers, l.upper, ['/usr/local/new/deeper']), true);
  const usr = lstatSync(join(l.upper, 'usr'));
  const local = lstatSync(join(l.upper, 'usr/local'));
  assert.deepEqual([usr.mode & 0o7777, usr.uid, usr.gid, usr.mtimeMs], [0o2751, 12, 34, 1_600_000_000_000]);
  assert.deepEqual([local.mode & 0o7777, local.uid, local.gid, local.mtimeMs], [0o1750, 5, 6, 1_500_000_000_000]);
  assert.deepEqual(readdirSync(join(l.upper, 'usr/local')), []);
});

test('several targets (a copy into an existing directory): each new, their ancestors copied up once', { skip: asRoot }, async (t) => {
  const l = layers(t);
  mkdirSync(join(l.bottom, 'app/old'), { recursive: true });
  utimesSync(join(l.bottom, 'app'), 1_600_000_000, 1_600_000_000);
  assert.equal(await prepareDirectCopy(l.lowers, l.upper, ['/app/a', '/app/b/c', '/top']), true);
  assert.deepEqual(readdirSync(l.upper), ['app']);
  assert.deepEqual(readdirSync(join(l.upper, 'app')), []);
  assert.equal(lstatSync(join(l.upper, 'app')).mtimeMs, 1_600_000_000_000);
  // One of them present already: the mount, and nothing copied up.
  const m = layers(t);
  mkdirSync(join(m.bottom, 'app/old'), { recursive: true });
  assert.equal(await prepareDirectCopy(m.lowers, m.upper, ['/app/new', '/app/old']), false);
  assert.deepEqual(readdirSync(m.upper), []);
});

test('the mount is needed: destination present, a whiteout, a symlink or a file on the way, xattrs to copy up', { skip: asRoot }, async (t) => {
  const l = layers(t);
  mkdirSync(join(l.bottom, 'exists'));
  assert.equal(await prepareDirectCopy(l.lowers, l.upper, ['/exists']), false);
  // A whiteout of a lower dir: overlayfs would make the new dir opaque.
  mkdirSync(join(l.bottom, 'gone'));
  execFileSync('mknod', [join(l.top, 'gone'), 'c', '0', '0']);
  assert.equal(await prepareDirectCopy(l.lowers, l.upper, ['/gone/x']), false);
  symlinkSync('/exists', join(l.bottom, 'link'));
  assert.equal(await prepareDirectCopy(l.lowers, l.upper, ['/link/x']), false);
  writeFileSync(join(l.bottom, 'file'), '');
  assert.equal(await prepareDirectCopy(l.lowers, l.upper, ['/file/x']), false);
  mkdirSync(join(l.bottom, 'tagged'));
  execFileSync('setfattr', ['-n', 'user.note', '-v', 'x', join(l.bottom, 'tagged')]);
  assert.equal(await prepareDirectCopy(l.lowers, l.upper, ['/tagged/x']), false);
  assert.equal(await prepareDirectCopy(l.lowers, l.upper, ['/a/../b']), false);
  assert.deepEqual(readdirSync(l.upper), [], 'nothing copied up when the mount is used');
});

// Each COPY here takes the direct path (/etc, /usr/local copied up; in-process or in a worker) but
// for /home/again (over a whiteout) and `COPY tree/a.txt /app/tree/` (that file exists). `many` has more
// entries than a copy made in the build's process may have: it is copied by a worker, on the upper dir.
const DOCKERFILE = `FROM busybox:latest
RUN mkdir -p /usr/local/share && chmod 2750 /usr/local/share && chown 7:8 /usr/local/share && touch -d @1600000000 /usr/local/share && rm -rf /home
COPY tree /data
COPY tree/a.txt /usr/local/share/newdir/
COPY tree/a.txt /usr/local/share/renamed.txt
COPY --chown=1234:5678 --chmod=640 tree /opt/owned/
COPY --parents tree/sub/./deep /parents/
COPY tree /etc/tree-copy
COPY tree /home/again
COPY --link tree /linked/
ADD tree.tar /unpacked/
COPY tree/a.txt /
COPY tree/ /usr/local/
COPY tree/a.txt tree/sub/deep/b.txt /usr/
WORKDIR /app
COPY . .
COPY tree/a.txt /app/tree/
COPY many /many/
`;

async function buildOnce(t: { after(fn: () => void): void }, directCopy: boolean) {
  const dir = mkdtempSync(join(tmpdir(), `tsbuild-direct-build-${directCopy}-`));
  if (process.env['KEEP'] !== '1') t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  const ctx = join(dir, 'ctx');
  mkdirSync(join(ctx, 'tree/sub/deep'), { recursive: true });
  writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE);
  writeFileSync(join(ctx, 'tree/a.txt'), 'a\n');
  writeFileSync(join(ctx, 'tree/sub/deep/b.txt'), 'b\n');
  chmodSync(join(ctx, 'tree/sub/deep/b.txt'), 0o4755);
  symlinkSync('../a.txt', join(ctx, 'tree/sub/link'));
  execFileSync('ln', [join(ctx, 'tree/a.txt'), join(ctx, 'tree/hard.txt')]);
  execFileSync('tar', ['-cf', join(ctx, 'tree.tar'), '--mtime=@1700000000', '-C', join(ctx, 'tree'), '.']);
  mkdirSync(join(ctx, 'many'));
  for (let i = 0; i < 2100; i++) writeFileSync(join(ctx, 'many', `f${i}`), `${i}\n`);
  utimesSync(join(ctx, 'many'), 1_700_000_000, 1_700_000_000);
  for (const p of ['tree/a.txt', 'tree/sub/deep/b.txt', 'tree/sub/deep', 'tree/sub', 'tree', 'tree.tar', 'Dockerfile', '.']) utimesSync(join(ctx, p), 1_700_000_000, 1_700_000_000);
  const store = await ImageStore.open(root);
  await importRootfs(store, Readable.from([exampleBusyboxTar()]), { reference: 'busybox:latest', platform: { os: 'linux', architecture: 'amd64' }, now: new Date('2024-01-01T00:00:00Z') });
  // The epoch clamps only what the steps made now; the copied-up dirs keep older times, compared as they are.
  const { id } = await runBuild({ root, contextDir: ctx, tags: ['out'], sourceDateEpoch: 1_750_000_000, directCopy });
  const image = await store.require('out:latest');
  return { id, diffIds: image.config.rootfs.diff_ids, root };
}

test('builds: the direct copy gives the same layers and image as the copy through the overlay', { skip: realBuildSkip }, async (t) => {
  const mounted = await buildOnce(t, false);
  const direct = await buildOnce(t, true);
  assert.deepEqual(direct.diffIds, mounted.diffIds);
  assert.equal(direct.id, mounted.id);
  for (const r of [mounted.root, direct.root]) {
    const scratch = join(r, 'tsbuild-tmp');
    assert.deepEqual(existsSync(scratch) ? readdirSync(scratch) : [], []);
  }
});
