import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  INIT_LAYER_ENTRIES,
  createInitLayer,
  lstatLayered,
  overlayMountData,
  readLayeredFile,
  resolveLayeredPath,
} from '../../src/snapshot/overlay.js';

const isRoot = process.getuid?.() === 0;
const mode = (p: string) => lstatSync(p).mode & 0o7777;
const tree = (d: string) => (readdirSync(d, { recursive: true }) as string[]).map(String).sort();

describe('createInitLayer', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsbuild-init-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("makes exactly moby's entries with moby's modes", async () => {
    const init = join(dir, 'a');
    await createInitLayer(init);
    assert.deepEqual(tree(init), [
      '.dockerenv',
      'dev',
      'dev/console',
      'dev/pts',
      'dev/shm',
      'etc',
      'etc/hostname',
      'etc/hosts',
      'etc/mtab',
      'etc/resolv.conf',
      'proc',
      'sys',
    ]);
    for (const d of ['dev', 'dev/pts', 'dev/shm', 'etc', 'proc', 'sys']) {
      assert.ok(lstatSync(join(init, d)).isDirectory(), d);
      assert.equal(mode(join(init, d)), 0o755, d);
    }
    for (const f of ['.dockerenv', 'dev/console', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf']) {
      const st = lstatSync(join(init, f));
      assert.ok(st.isFile(), f);
      assert.equal(st.size, 0, f);
      assert.equal(mode(join(init, f)), 0o755, f);
      if (isRoot) assert.deepEqual([st.uid, st.gid], [0, 0]);
    }
    assert.equal(readlinkSync(join(init, 'etc/mtab')), '/proc/mounts');
    assert.equal(INIT_LAYER_ENTRIES.length, 10);
  });

  test('is idempotent, keeps what is right (same inodes) and repairs what is wrong', async () => {
    const init = join(dir, 'b');
    await createInitLayer(init);
    const ino = lstatSync(join(init, 'etc/hosts')).ino;
    rmSync(join(init, 'proc'), { recursive: true });
    writeFileSync(join(init, 'proc'), 'not a dir');
    rmSync(join(init, 'etc/mtab'));
    symlinkSync('/elsewhere', join(init, 'etc/mtab'));
    rmSync(join(init, 'dev/console'));
    mkdirSync(join(init, 'dev/console'));
    await createInitLayer(init);
    assert.equal(lstatSync(join(init, 'etc/hosts')).ino, ino);
    assert.ok(lstatSync(join(init, 'proc')).isDirectory());
    assert.equal(readlinkSync(join(init, 'etc/mtab')), '/proc/mounts');
    assert.ok(lstatSync(join(init, 'dev/console')).isFile());
  });

  test("mirrors the image's directory attributes when given its layers", { skip: isRoot ? undefined : 'needs root (chown)' }, async () => {
    const top = join(dir, 'img-top');
    const bottom = join(dir, 'img-bottom');
    mkdirSync(join(top, 'etc'), { recursive: true, mode: 0o750 });
    mkdirSync(join(bottom, 'etc'), { recursive: true });
    mkdirSync(join(bottom, 'proc'), { recursive: true, mode: 0o555 });
    execFileSync('chmod', ['0750', join(top, 'etc')]);
    execFileSync('chmod', ['0555', join(bottom, 'proc')]);
    chownSync(join(top, 'etc'), 7, 8);
    utimesSync(join(top, 'etc'), 1_000_000, 1_000_000);
    const init = join(dir, 'c');
    await createInitLayer(init, { lowerDirs: [top, bottom] });
    const etc = lstatSync(join(init, 'etc'));
    assert.deepEqual([etc.mode & 0o7777, etc.uid, etc.gid, Math.round(etc.mtimeMs / 1000)], [0o750, 7, 8, 1_000_000]);
    assert.equal(mode(join(init, 'proc')), 0o555);
    assert.equal(mode(join(init, 'sys')), 0o755); // not in the image
  });
});

describe('overlayMountData', () => {
  const rootfs = { lowerDirs: ['/s/l/B', '/s/l/A'], upperDir: '/s/x/diff', workDir: '/s/x/work' };

  test('init first, then the image layers top-most first', () => {
    const { data, cwd } = overlayMountData('/s/x-init/diff', rootfs);
    assert.equal(cwd, undefined);
    assert.ok(data.endsWith('lowerdir=/s/x-init/diff:/s/l/B:/s/l/A,upperdir=/s/x/diff,workdir=/s/x/work'), data);
    if (existsSync('/sys/module/overlay/parameters/index')) assert.ok(data.startsWith('index=off,'), data);
  });

  test('scratch: the init layer alone is the lowerdir', () => {
    assert.match(overlayMountData('/i', { lowerDirs: [], upperDir: '/u', workDir: '/w' }).data, /lowerdir=\/i,upperdir=\/u,workdir=\/w$/);
  });

  test('over a page: paths relative to their common dir', () => {
    const base = '/var/lib/' + 'x'.repeat(200);
    const lowers = Array.from({ length: 30 }, (_, i) => `${base}/l/L${i}`);
    const { data, cwd } = overlayMountData(`${base}/init`, { lowerDirs: lowers, upperDir: `${base}/u/diff`, workDir: `${base}/u/work` });
    assert.equal(cwd, base);
    assert.ok(data.endsWith(`lowerdir=init:${lowers.map((_, i) => `l/L${i}`).join(':')},upperdir=u/diff,workdir=u/work`), data);
  });

  test('many layers of a store: lowers named by their short l/<lid> links, as dockerd does', () => {
    const base = mkdtempSync(join(tmpdir(), 'tsbuild-overlay-links-'));
    try {
      const o2 = join(base, 'overlay2');
      mkdirSync(join(o2, 'l'), { recursive: true });
      const lowers = Array.from({ length: 60 }, (_, i) => {
        const id = i.toString(16).padStart(64, 'a');
        const lid = `L${String(i).padStart(25, '0')}`;
        mkdirSync(join(o2, id, 'diff'), { recursive: true });
        writeFileSync(join(o2, id, 'link'), lid);
        symlinkSync(join('..', id, 'diff'), join(o2, 'l', lid));
        return join(o2, id, 'diff');
      });
      const { data, cwd } = overlayMountData(join(base, 'tmp/init'), { lowerDirs: lowers, upperDir: join(o2, 'u'.repeat(64), 'diff'), workDir: join(o2, 'u'.repeat(64), 'work') });
      assert.equal(cwd, base);
      assert.ok(data.length <= 4095, `${data.length} bytes`);
      assert.ok(data.includes(`lowerdir=tmp/init:overlay2/l/L${'0'.repeat(25)}:`), data);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  test('refuses what cannot be said in mount options, and too many layers', () => {
    assert.throws(() => overlayMountData('/i', { lowerDirs: ['/a,b'], upperDir: '/u', workDir: '/w' }), { code: 'SNAPSHOT_PATH' });
    assert.throws(() => overlayMountData('/i', { lowerDirs: ['/a:b'], upperDir: '/u', workDir: '/w' }), { code: 'SNAPSHOT_PATH' });
    assert.throws(() => overlayMountData('rel', { lowerDirs: [], upperDir: '/u', workDir: '/w' }), { code: 'SNAPSHOT_PATH' });
    const lowers = Array.from({ length: 500 }, (_, i) => `/a${i}/${'y'.repeat(20)}`);
    assert.throws(() => overlayMountData('/i', { lowerDirs: lowers, upperDir: '/u', workDir: '/w' }), { code: 'SNAPSHOT_TOO_MANY_LAYERS' });
  });
});

describe('reading through layers', { skip: isRoot ? undefined : 'needs root (whiteouts, trusted.* xattrs)' }, () => {
  let dir: string;
  let upper: string;
  let l1: string;
  let l2: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsbuild-layered-test-'));
    [upper, l1, l2] = ['upper', 'l1', 'l2'].map((n) => join(dir, n)) as [string, string, string];
    for (const d of [upper, l1, l2]) mkdirSync(d);
    // l2 (bottom)
    mkdirSync(join(l2, 'etc'));
    writeFileSync(join(l2, 'etc/passwd'), 'old\n');
    writeFileSync(join(l2, 'etc/group'), 'grp\n');
    mkdirSync(join(l2, 'usr/etc'), { recursive: true });
    writeFileSync(join(l2, 'usr/etc/passwd'), 'usr-etc\n');
    symlinkSync('/usr/etc', join(l2, 'etc2'));
    symlinkSync('../../../../../../../../etc', join(l2, 'escape'));
    mkdirSync(join(l2, 'opq'));
    writeFileSync(join(l2, 'opq/x'), 'hidden\n');
    mkdirSync(join(l2, 'data'));
    writeFileSync(join(l2, 'data/a'), 'a\n');
    // l1: deletes /etc/passwd, makes /opq opaque, replaces /data by a file
    mkdirSync(join(l1, 'etc'));
    execFileSync('mknod', [join(l1, 'etc/passwd'), 'c', '0', '0']);
    mkdirSync(join(l1, 'opq'));
    writeFileSync(join(l1, 'opq/y'), 'y\n');
    execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(l1, 'opq')]);
    writeFileSync(join(l1, 'data'), 'file now\n');
    // upper: a new /etc/passwd
    mkdirSync(join(upper, 'etc'));
    writeFileSync(join(upper, 'etc/passwd'), 'new\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('top-most wins; a whiteout hides what is below', async () => {
    assert.equal((await readLayeredFile([upper, l1, l2], '/etc/passwd'))?.toString(), 'new\n');
    assert.equal(await readLayeredFile([l1, l2], '/etc/passwd'), undefined);
    assert.equal((await readLayeredFile([l2], '/etc/passwd'))?.toString(), 'old\n');
    assert.equal((await readLayeredFile([upper, l1, l2], '/etc/group'))?.toString(), 'grp\n');
  });

  test('an opaque dir hides the lower dir contents', async () => {
    assert.equal(await lstatLayered([upper, l1, l2], '/opq/x'), undefined);
    assert.equal((await lstatLayered([upper, l1, l2], '/opq/y'))?.layer, l1);
    assert.equal((await lstatLayered([l2], '/opq/x'))?.layer, l2);
  });

  test('a non-dir in a higher layer ends the merge', async () => {
    assert.equal(await lstatLayered([l1, l2], '/data/a'), undefined);
    assert.equal((await readLayeredFile([l1, l2], '/data'))?.toString(), 'file now\n');
  });

  test('symlinks are followed inside the rootfs, never out of it', async () => {
    assert.equal(await resolveLayeredPath([upper, l1, l2], '/etc2/passwd'), '/usr/etc/passwd');
    assert.equal((await readLayeredFile([upper, l1, l2], '/etc2/passwd'))?.toString(), 'usr-etc\n');
    assert.equal(await resolveLayeredPath([upper, l1, l2], '/escape/passwd'), '/etc/passwd');
    assert.equal((await readLayeredFile([upper, l1, l2], '/escape/passwd'))?.toString(), 'new\n');
    assert.equal(await resolveLayeredPath([upper], '/../../a/./b/..'), '/a');
  });

  test('a file of the host is not read through the layers', async () => {
    assert.equal(await readLayeredFile([upper, l1, l2], '/etc/hostname'), undefined);
    assert.equal(readFileSync(join(l2, 'etc/group'), 'utf8'), 'grp\n');
  });
});
