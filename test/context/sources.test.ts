import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

import { loadBuildContext, DirTree, type BuildContext } from '../../src/context/tree.js';
import { CopyError, normalizeDest, resolveCopy, resolveInTree, type CopyPlan } from '../../src/context/sources.js';
import { combineSourceHashes, dirHash, hashStringSlice, tarsumHeaderBytes } from '../../src/context/hash.js';
import type { CopyInstruction } from '../../src/instructions/types.js';
import { NO_NAMES } from '../../src/layer/users.js';
import { mkTree, tempDir, type Spec } from './tree-helpers.js';

/** The context of the docker probes; hashes below were produced by dockerd 20.10 for it. */
const CONTEXT: Spec[] = [
  { path: 'f.txt', content: 'hello\n' },
  { path: 'x.sh', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
  { path: 'empty', content: '' },
  { path: 'd', type: 'dir', mode: 0o750 },
  { path: 'd/a', content: 'AAA', mode: 0o600 },
  { path: 'd/sub', type: 'dir', mode: 0o700 },
  { path: 'd/sub/b', content: 'BB', mode: 0o640 },
  { path: 'ln', type: 'symlink', target: 'f.txt' },
  { path: 'dlink', type: 'symlink', target: 'd' },
  { path: 'hl/h1', content: 'hard' },
  { path: 'hl/h2', type: 'hardlink', target: 'hl/h1' },
  { path: 'd2/file', content: 'x' },
  { path: 'd2/rel', type: 'symlink', target: '../f.txt' },
  { path: 'd2/broken', type: 'symlink', target: '/nonexistent' },
  { path: 'd2/abs', type: 'symlink', target: '/f.txt' },
  { path: 'ign/drop', content: 'drop' },
  { path: 'ign/keep', content: 'keep' },
  { path: 'a.log', content: 'log' },
  { path: '.dockerignore', content: '*.log\nign\n!ign/keep\n' },
  { path: 'Dockerfile', content: 'FROM busybox\n' },
];

/** Docker 20.10 (CLI 20.10: typed modes) history hashes for this context. */
const DOCKER = {
  fTxt: 'file:a76d97b9e333b20275d3a840325f2eb49929ce711c732e45f5b6a24cce4caac3',
  xSh: 'file:3dd40d4906f01b0e3bc2f7df233ba673f7c65ce1206d2481c6dd042ab69372a2',
  empty: 'file:44bc590b5dc5f439088b0a3805e6868cac0bab17328c944bb2ede20952f566a8',
  dirD: 'dir:9fd5ed2ec391c7a3dfc823878ba80d0ffd1b03120e0cafcc0f03910eadbeba9c',
  fTxtXSh: 'multi:03f20dff63295a1477a60f01e352158053bac43f3e6128130e5f097f2fd50229',
  hl: 'dir:762525ef6eb5ee453dc1b8632c6403128b78fc50ee1c2fa856c692861a513a16',
  d2: 'dir:9d68e83a8e9e6bea18edbede17e1701851054ac9018ce36fb512b4bc7bf12254',
  ign: 'dir:0904d51f2ca980b7cf26c92a7b2313c3e298a3dfc208de7e264fedfde8e5a70b',
  dstar: 'multi:c8d5050598ee83b2972c542ecb4cdfa09dd88ab715db4413c3806f9968ac49ae',
  ignKeep: 'file:57920685f17e8f28968e718c5e9b8501b74dab70943b5a49db2542b7fdf43dfb',
  dlinkA: 'file:84dd20d112d426e8372f73390c33847e318bbb26dd10a70a65632a01a92d0743',
};

function instr(sources: string[], dest: string, extra: Partial<CopyInstruction> = {}): CopyInstruction {
  return { kind: 'COPY', sources, dest, link: false, parents: false, exclude: [], heredocs: [], ...extra };
}

async function withContext(fn: (ctx: BuildContext, dir: string) => Promise<void>, opts: { modeStyle?: 'perm' | 'typed'; specs?: Spec[] } = {}): Promise<void> {
  const t = tempDir();
  try {
    const dir = join(t.dir, 'ctx');
    mkTree(dir, opts.specs ?? CONTEXT);
    const ctx = await loadBuildContext({ contextDir: dir, dockerfile: join(dir, 'Dockerfile'), modeStyle: opts.modeStyle ?? 'typed', now: 1700000000 });
    await fn(ctx, dir);
  } finally {
    t.cleanup();
  }
}

async function plan(ctx: BuildContext, sources: string[], dest: string, extra: Partial<CopyInstruction> = {}, workdir = ''): Promise<CopyPlan> {
  return resolveCopy(instr(sources, dest, extra), { tree: ctx, workdir });
}

async function rejects(p: Promise<unknown>, code: string, message: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CopyError, String(e));
    assert.equal(e.message, message);
    assert.equal(e.code, code);
    return true;
  });
}

test('context: .dockerignore hides paths; an exception re-includes a child of an ignored dir (its parent is implied)', async () => {
  await withContext(async (ctx) => {
    assert.deepEqual(ctx.paths(), [
      '.', '.dockerignore', 'Dockerfile', 'd', 'd/a', 'd/sub', 'd/sub/b', 'd2', 'd2/abs', 'd2/broken', 'd2/file', 'd2/rel',
      'dlink', 'empty', 'f.txt', 'hl', 'hl/h1', 'hl/h2', 'ign', 'ign/keep', 'ln', 'x.sh',
    ]);
    const ign = await ctx.lstat('ign');
    assert.equal(ign?.implied, true);
    assert.equal(ign?.mode, 0o755);
    assert.equal(ign?.mtime, 1700000000);
    assert.equal(await ctx.sum('ign'), undefined);
    assert.equal((await ctx.lstat('hl/h2'))?.hardlinkTo, 'hl/h1');
    assert.equal((await ctx.lstat('hl/h1'))?.hardlinkTo, undefined);
    assert.equal((await ctx.lstat('f.txt'))?.uid, 0);
  });
});

test('context: an ignored Dockerfile and .dockerignore are sent but then removed', async () => {
  await withContext(
    async (ctx) => {
      assert.deepEqual(ctx.paths(), ['.', 'keep', 'sub', 'sub/keep']);
    },
    {
      specs: [
        { path: 'Dockerfile', content: 'FROM x\n' },
        { path: '.dockerignore', content: 'Dockerfile\n.dockerignore\nsub/drop\n' },
        { path: 'keep', content: 'k' },
        { path: 'sub/keep', content: 'k' },
        { path: 'sub/drop', content: 'd' },
      ],
    },
  );
});

test('context: a directory is skipped whole unless an exception starts with its path', async () => {
  await withContext(async (ctx) => assert.deepEqual(ctx.paths(), ['.', '.dockerignore', 'Dockerfile']), {
    specs: [
      { path: 'Dockerfile', content: '' },
      { path: '.dockerignore', content: 'ig\n!*/keep\n' },
      { path: 'ig/keep', content: 'k' },
    ],
  });
});

test('hashes equal docker 20.10 for files, dirs, several sources, wildcards, symlinks, hard links, implied dirs', async () => {
  await withContext(async (ctx) => {
    assert.equal((await plan(ctx, ['f.txt'], '/')).hash, DOCKER.fTxt);
    assert.equal((await plan(ctx, ['x.sh'], '/')).hash, DOCKER.xSh);
    assert.equal((await plan(ctx, ['empty'], '/e')).hash, DOCKER.empty);
    assert.equal((await plan(ctx, ['d'], '/d')).hash, DOCKER.dirD);
    assert.equal((await plan(ctx, ['dlink'], '/dl')).hash, DOCKER.dirD);
    assert.equal((await plan(ctx, ['f.txt', 'x.sh'], '/multi/')).hash, DOCKER.fTxtXSh);
    assert.equal((await plan(ctx, ['*.txt'], '/w/')).hash, DOCKER.fTxt);
    assert.equal((await plan(ctx, ['ln'], '/lncopied')).hash, DOCKER.fTxt);
    assert.equal((await plan(ctx, ['hl'], '/hl')).hash, DOCKER.hl);
    assert.equal((await plan(ctx, ['d2'], '/d2')).hash, DOCKER.d2);
    assert.equal((await plan(ctx, ['ign'], '/ign')).hash, DOCKER.ign);
    assert.equal((await plan(ctx, ['d/*'], '/dstar/')).hash, DOCKER.dstar);
    assert.equal((await plan(ctx, ['ign/keep'], '/k')).hash, DOCKER.ignKeep);
    assert.equal((await plan(ctx, ['dlink/a'], '/dla')).hash, DOCKER.dlinkA);
    assert.equal((await plan(ctx, ['/f.txt'], '/abs')).hash, DOCKER.fTxt);
    assert.equal((await plan(ctx, ['./f.txt'], '/abs')).hash, DOCKER.fTxt);
    assert.equal((await plan(ctx, ['d2/abs'], '/abs2')).hash, DOCKER.fTxt); // absolute link target = context root
  });
});

test('hash building blocks: tarsum v1 header, dir and multi', () => {
  const h = { name: 'f.txt', mode: 0o644, uid: 0, gid: 0, size: 6, typeflag: '0', linkname: '', uname: 'ignored?', gname: '', devmajor: 0, devminor: 0 };
  assert.equal(tarsumHeaderBytes(h).toString(), 'namef.txtmode420uid0gid0size6typeflag0linknameunameignored?gnamedevmajor0devminor0');
  const withX = tarsumHeaderBytes({ ...h, uname: '', xattrs: new Map([['security.capability', Buffer.from([1, 2])], ['a', Buffer.from('b')]]) });
  assert.deepEqual(withX, Buffer.concat([Buffer.from('namef.txtmode420uid0gid0size6typeflag0linknameunamegnamedevmajor0devminor0absecurity.capability'), Buffer.from([1, 2])]));
  const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
  assert.equal(hashStringSlice('dir', ['b', 'a']), `dir:${sha('b,a')}`);
  assert.equal(dirHash(['b', 'a']), `dir:${sha('a,b')}`);
  // UTF-8 byte order, not UTF-16's: U+FFFF (EF BF BF) sorts before U+10000 (F0 90 80 80).
  assert.equal(dirHash(['\u{10000}', '\uffff', 'z', 'é']), `dir:${sha('z,é,\uffff,\u{10000}')}`);
  assert.equal(combineSourceHashes(['file:1']), 'file:1');
  assert.equal(combineSourceHashes(['file:2', 'file:1']), `multi:${sha('file:2,file:1')}`);
});

test("modeStyle 'perm' (current clients) hashes permission bits only", async () => {
  await withContext(
    async (ctx) => {
      const header = 'namef.txtmode420uid0gid0size6typeflag0linknameunamegnamedevmajor0devminor0';
      const sum = createHash('sha256').update(`${header}hello\n`).digest('hex');
      assert.equal((await plan(ctx, ['f.txt'], '/')).hash, `file:${sum}`);
      // STORE-FORMAT §4: startService.sh `echo started\n` sent with mode 420 by current clients.
      const s2 = createHash('sha256').update('namestartService.shmode420uid0gid0size13typeflag0linknameunamegnamedevmajor0devminor0echo started\n').digest('hex');
      assert.equal((await plan(ctx, ['startService.sh'], '/')).hash, `file:${s2}`);
    },
    { modeStyle: 'perm', specs: [{ path: 'f.txt', content: 'hello\n' }, { path: 'startService.sh', content: 'echo started\n' }] },
  );
});

test('sources: dir sources, wildcards, dest rules and history text', async () => {
  await withContext(async (ctx) => {
    const p = await plan(ctx, ['d/*'], '/dstar/');
    assert.deepEqual(
      p.operations.map((o) => [o.source.path, o.source.resolved, o.source.type, o.dest]),
      [
        ['d/a', 'd/a', 'file', '/dstar/'],
        ['d/sub', 'd/sub', 'dir', '/dstar/'],
      ],
    );
    // One wildcard match needs no trailing slash; a pattern matching nothing adds nothing.
    assert.equal((await plan(ctx, ['*.txt'], '/one')).operations.length, 1);
    assert.deepEqual((await plan(ctx, ['*.nope', 'f.txt'], '/x')).operations.map((o) => o.source.path), ['f.txt']);
    const ln = await plan(ctx, ['ln'], '/x/');
    assert.deepEqual([ln.operations[0]?.source.path, ln.operations[0]?.source.resolved], ['ln', 'f.txt']);
    // `.`, `./` and `/` are the whole context.
    const all = (await plan(ctx, ['.'], '/all')).hash;
    assert.equal((await plan(ctx, ['./'], '/all')).hash, all);
    assert.equal((await plan(ctx, ['/'], '/all')).hash, all);
    assert.equal((await plan(ctx, ['.'], '/all')).operations[0]?.source.resolved, '.');
    // Relative destinations follow WORKDIR, keeping a trailing slash.
    const rel = await plan(ctx, ['*.sh'], './rel/', {}, '/app');
    assert.equal(rel.dest, '/app/rel/');
    assert.equal(rel.historyText, `COPY ${DOCKER.xSh} in ./rel/ `);
    const chown = await plan(ctx, ['f.txt'], '/p/q/f', { chown: '1000:1000' });
    assert.equal(chown.historyText, `COPY --chown=1000:1000${DOCKER.fTxt} in /p/q/f `);
    assert.equal(chown.preserveOwnership, false);
    assert.equal((await resolveCopy({ ...instr(['f.txt'], '/'), kind: 'ADD' }, { tree: ctx, workdir: '' })).decompress, true);
  });
});

test('sources: errors read like docker 20.10', async () => {
  await withContext(async (ctx) => {
    await rejects(plan(ctx, ['../x'], '/'), 'COPY_OUTSIDE_CONTEXT', 'COPY failed: forbidden path outside the build context: ../x ()');
    await rejects(plan(ctx, ['d/../../x'], '/'), 'COPY_OUTSIDE_CONTEXT', 'COPY failed: forbidden path outside the build context: d/../../x ()');
    await rejects(plan(ctx, ['nope'], '/'), 'COPY_NOT_FOUND', 'COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does not exist');
    await rejects(plan(ctx, ['a.log'], '/'), 'COPY_NOT_FOUND', 'COPY failed: file not found in build context or excluded by .dockerignore: stat a.log: file does not exist');
    await rejects(plan(ctx, ['ign/drop'], '/'), 'COPY_NOT_FOUND', 'COPY failed: file not found in build context or excluded by .dockerignore: stat ign/drop: file does not exist');
    await rejects(plan(ctx, ['d2/broken'], '/'), 'COPY_NOT_FOUND', 'COPY failed: file not found in build context or excluded by .dockerignore: stat d2/broken: file does not exist');
    await rejects(plan(ctx, ['*.nope'], '/'), 'COPY_NO_SOURCES', 'COPY failed: no source files were specified');
    await rejects(plan(ctx, ['../*'], '/'), 'COPY_NO_SOURCES', 'COPY failed: no source files were specified');
    const many = 'When using COPY with more than one source file, the destination must be a directory and end with a /';
    await rejects(plan(ctx, ['f.txt', 'x.sh'], '/nodir'), 'COPY_DEST_NOT_DIR', many);
    await rejects(plan(ctx, ['f.txt', 'f.txt'], '/two'), 'COPY_DEST_NOT_DIR', many);
    await rejects(plan(ctx, ['d/*'], '/two'), 'COPY_DEST_NOT_DIR', many);
    await rejects(plan(ctx, ['http://example.com/x'], '/'), 'COPY', "COPY failed: source can't be a URL for COPY");
    await rejects(resolveCopy({ ...instr(['https://example.com/x'], '/'), kind: 'ADD' }, { tree: ctx, workdir: '' }), 'NOT_SUPPORTED', 'ADD failed: downloading https://example.com/x is not supported yet');
    await rejects(plan(ctx, ['x'], '/', { heredocs: [{ name: 'x', content: 'y', expand: false, chomp: false } as never] }), 'NOT_SUPPORTED', 'COPY from a heredoc is not supported yet');
  });
});

test('resolveInTree keeps symlinks inside the root', async () => {
  await withContext(
    async (ctx) => {
      assert.equal(await resolveInTree(ctx, 'up/x'), 'x');
      assert.equal(await resolveInTree(ctx, 'abs/y'), 'etc/y');
      assert.equal(await resolveInTree(ctx, 'chain'), 'etc');
      assert.equal(await resolveInTree(ctx, 'missing/../etc'), 'etc');
      await assert.rejects(resolveInTree(ctx, 'loop'), /too many links/);
    },
    {
      specs: [
        { path: 'etc', type: 'dir' },
        { path: 'up', type: 'symlink', target: '../../..' },
        { path: 'abs', type: 'symlink', target: '/etc' },
        { path: 'chain', type: 'symlink', target: 'abs' },
        { path: 'loop', type: 'symlink', target: 'loop' },
      ],
    },
  );
});

test('normalizeDest', () => {
  assert.equal(normalizeDest('/app', 'x'), '/app/x');
  assert.equal(normalizeDest('/app', 'x/'), '/app/x/');
  assert.equal(normalizeDest('/app', '.'), '/app');
  assert.equal(normalizeDest('/app', './'), '/app/');
  assert.equal(normalizeDest('', 'x'), '/x');
  assert.equal(normalizeDest('/app', '/abs/../y'), '/abs/../y'); // absolute: as written
});

test('DirTree (COPY --from): typed modes, real owners, names from a lookup, no hard-link entries', async () => {
  const t = tempDir();
  try {
    mkTree(t.dir, [{ path: 'etc/f', content: 'x', uid: 1000, gid: 1001 }, { path: 'etc/g', type: 'hardlink', target: 'etc/f' }]);
    const tree = new DirTree(t.dir, { names: { user: (u) => (u === 1000 ? 'app' : undefined), group: () => undefined } });
    const expect = (name: string): string =>
      createHash('sha256').update(`name${name}mode33188uid1000gid1001size1typeflag0linknameunameappgnamedevmajor0devminor0x`).digest('hex');
    assert.equal(await tree.sum('etc/f'), expect('etc/f'));
    assert.equal(await tree.sum('etc/g'), expect('etc/g'));
    const p = await resolveCopy(instr(['/etc/f'], '/x', { from: 's' }), { tree, workdir: '' });
    assert.equal(p.hash, `file:${expect('etc/f')}`);
    assert.equal(p.preserveOwnership, true);
    await assert.rejects(resolveCopy(instr(['nope'], '/x', { from: 's' }), { tree, workdir: '' }), { message: 'COPY failed: stat nope: file does not exist' });
    const noNames = new DirTree(t.dir, { names: NO_NAMES });
    assert.notEqual(await noNames.sum('etc/f'), expect('etc/f'));
  } finally {
    t.cleanup();
  }
});
