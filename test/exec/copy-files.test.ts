/**
 * copyFiles into a plain directory, checked against exact trees. Every behaviour here was
 * observed on dockerd 20.10's classic builder (test/context/hash-docker.test.ts replays most of
 * them against a live daemon).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { loadBuildContext, DirTree, type SourceTree } from '../../src/context/tree.js';
import { CopyError, resolveCopy } from '../../src/context/sources.js';
import { copyFiles } from '../../src/exec/copy-files.js';
import { parseChmod } from '../../src/exec/copy-chmod.js';
import { resolveChown } from '../../src/exec/copy-chown.js';
import type { CopyInstruction } from '../../src/instructions/types.js';
import { d, f, l, listTree, mkTree, T0, tempDir, type Listed, type Spec } from '../context/tree-helpers.js';

const CONTEXT: Spec[] = [
  { path: 'f.txt', content: 'hello\n' },
  { path: 'x.sh', content: '#!/bin/sh\n', mode: 0o755 },
  { path: 'empty', content: '' },
  { path: 'suid', content: 'S', mode: 0o4755 },
  { path: 'sg', content: 'G', mode: 0o2644 },
  { path: 'd', type: 'dir', mode: 0o750 },
  { path: 'd/a', content: 'AAA', mode: 0o600 },
  { path: 'd/sub', type: 'dir', mode: 0o700 },
  { path: 'd/sub/b', content: 'BB', mode: 0o640 },
  { path: 'd/ln', type: 'symlink', target: '../f.txt' },
  { path: 'ln', type: 'symlink', target: 'f.txt' },
  { path: 'hl/h1', content: 'hard' },
  { path: 'hl/h2', type: 'hardlink', target: 'hl/h1' },
  { path: 'tree/etc', type: 'dir', mode: 0o700 },
  { path: 'tree/etc/new', content: 'n' },
];

const ROOTFS: Spec[] = [
  { path: 'etc', type: 'dir' },
  { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' },
  { path: 'etc/group', content: 'root:x:0:\napp:x:1000:\nstaff:x:50:\n' },
  { path: 'tmp', type: 'dir', mode: 0o1777 },
  { path: 'home/app', type: 'dir', uid: 1000, gid: 1000 },
  { path: 'bin', type: 'dir' },
  { path: 'lnk', type: 'symlink', target: '/tmp' },
  { path: 'existing', content: 'old', mode: 0o600, uid: 7, gid: 7 },
  { path: 'w', type: 'dir', mode: 0o711 },
];

function instr(line: string): CopyInstruction {
  const words = line.split(/\s+/);
  const kind = words.shift() as 'COPY' | 'ADD';
  const out: CopyInstruction = { kind, sources: [], dest: '', link: false, parents: false, exclude: [], heredocs: [] };
  while (words[0]?.startsWith('--')) {
    const [k, v] = (words.shift() as string).slice(2).split('=') as [string, string];
    if (k === 'chown' || k === 'chmod' || k === 'from') out[k] = v;
  }
  out.dest = words.pop() as string;
  out.sources = words;
  return out;
}

interface Env {
  ctxDir: string;
  rootfs: string;
  start: number;
  copy(line: string, opts?: { workdir?: string; tree?: SourceTree }): Promise<string>;
  /** Listing of paths under `sub` (the sub dir itself included); mtimes of entries this test created are 0. */
  tree(sub: string): Listed[];
}

async function withEnv(fn: (env: Env) => Promise<void>, extra: { context?: Spec[]; rootfs?: Spec[] } = {}): Promise<void> {
  const t = tempDir('tsb-copy-');
  try {
    const ctxDir = join(t.dir, 'ctx');
    const rootfs = join(t.dir, 'rootfs');
    mkTree(ctxDir, extra.context ?? CONTEXT);
    mkTree(rootfs, extra.rootfs ?? ROOTFS);
    const ctx = await loadBuildContext({ contextDir: ctxDir, ignore: null });
    const start = Math.floor(Date.now() / 1000);
    const env: Env = {
      ctxDir,
      rootfs,
      start,
      async copy(line, o = {}) {
        const plan = await resolveCopy(instr(line), { tree: o.tree ?? ctx, workdir: o.workdir ?? '' });
        const r = await copyFiles({ rootfs, plan });
        return r.historyText;
      },
      tree(sub) {
        const base = join(rootfs, sub);
        const top = lstatSync(base).isDirectory()
          ? listTree(base, { withRoot: true, nlink: true }).map((e) => ({ ...e, path: e.path === '.' ? sub : `${sub}/${e.path}` }))
          : listTree(join(base, '..'), { nlink: true }).filter((e) => e.path === basename(sub)).map((e) => ({ ...e, path: sub }));
        return top.map((e) => (e.mtime >= start ? { ...e, mtime: 0 } : e));
      },
    };
    await fn(env);
  } finally {
    t.cleanup();
  }
}

const NEW = { mtime: 0 };

test('a file keeps mode and mtime, is owned 0:0; a file to dir/ is named after the source', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY f.txt /');
    assert.deepEqual(env.tree('f.txt'), [f('f.txt', 0o644, 'hello\n', { nlink: 1 })]);
    await env.copy('COPY x.sh /new/dir/');
    assert.deepEqual(env.tree('new'), [d('new', 0o755, NEW), d('new/dir', 0o755, NEW), f('new/dir/x.sh', 0o755, '#!/bin/sh\n', { nlink: 1 })]);
    await env.copy('COPY empty /e');
    assert.deepEqual(env.tree('e'), [f('e', 0o644, '', { nlink: 1 })]);
  });
});

test('a directory copies its contents; the created destination is 0755; symlinks stay symlinks', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY d /d');
    assert.deepEqual(env.tree('d'), [
      d('d', 0o755, NEW),
      f('d/a', 0o600, 'AAA', { nlink: 1 }),
      l('d/ln', '../f.txt'),
      d('d/sub', 0o700),
      f('d/sub/b', 0o640, 'BB', { nlink: 1 }),
    ]);
  });
});

test('several sources and wildcards go into dest/; a top-level symlink is copied as its target', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY f.txt x.sh ln /multi/');
    assert.deepEqual(env.tree('multi'), [
      d('multi', 0o755, NEW),
      f('multi/f.txt', 0o644, 'hello\n', { nlink: 1 }),
      f('multi/ln', 0o644, 'hello\n', { nlink: 1 }),
      f('multi/x.sh', 0o755, '#!/bin/sh\n', { nlink: 1 }),
    ]);
    await env.copy('COPY d/* /star/');
    assert.deepEqual(env.tree('star'), [
      d('star', 0o755, NEW),
      f('star/a', 0o600, 'AAA', { nlink: 1 }),
      f('star/b', 0o640, 'BB', { nlink: 1 }),
      f('star/ln', 0o644, 'hello\n', { nlink: 1 }), // d/ln matched the wildcard: a top-level source, dereferenced
    ]);
  });
});

test('--chown: a file copy creates its parents owned by the identity, a dir copy only its destination', async () => {
  await withEnv(async (env) => {
    assert.match(await env.copy('COPY --chown=app f.txt /p/q/f'), /^COPY --chown=appfile:[0-9a-f]{64} in \/p\/q\/f $/);
    assert.deepEqual(env.tree('p'), [d('p', 0o755, { uid: 1000, gid: 1000, mtime: 0 }), d('p/q', 0o755, { uid: 1000, gid: 1000, mtime: 0 }), f('p/q/f', 0o644, 'hello\n', { uid: 1000, gid: 1000, nlink: 1 })]);
    await env.copy('COPY --chown=1000:staff d /a/b/c');
    const o = { uid: 1000, gid: 50 };
    assert.deepEqual(env.tree('a'), [
      d('a', 0o755, NEW),
      d('a/b', 0o755, NEW),
      d('a/b/c', 0o755, { ...o, mtime: 0 }),
      f('a/b/c/a', 0o600, 'AAA', { ...o, nlink: 1 }),
      l('a/b/c/ln', '../f.txt', o),
      d('a/b/c/sub', 0o700, o),
      f('a/b/c/sub/b', 0o640, 'BB', { ...o, nlink: 1 }),
    ]);
  });
});

test('an existing destination directory keeps its mode and owner', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY --chown=1000:1000 d /tmp/');
    const t = env.tree('tmp');
    assert.deepEqual(t[0], d('tmp', 0o1777, NEW));
    assert.deepEqual(t.find((e) => e.path === 'tmp/sub'), d('tmp/sub', 0o700, { uid: 1000, gid: 1000 }));
    await env.copy('COPY --chown=1000:1000 f.txt /home/app/');
    assert.deepEqual(env.tree('home/app'), [d('home/app', 0o755, { uid: 1000, gid: 1000, mtime: 0 }), f('home/app/f.txt', 0o644, 'hello\n', { uid: 1000, gid: 1000, nlink: 1 })]);
  });
});

test('nested directories that exist take the source directory mode, owner and mtime', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY tree/ /');
    assert.deepEqual(env.tree('etc').filter((e) => e.path !== 'etc/passwd' && e.path !== 'etc/group'), [d('etc', 0o700), f('etc/new', 0o644, 'n', { nlink: 1 })]);
  });
});

test('hard links inside one directory source stay hard links', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY hl /hl');
    assert.deepEqual(env.tree('hl'), [d('hl', 0o755, NEW), f('hl/h1', 0o644, 'hard', { nlink: 2 }), f('hl/h2', 0o644, 'hard', { nlink: 2 })]);
    await env.copy('COPY hl/h1 hl/h2 /sep/');
    assert.deepEqual(env.tree('sep').map((e) => e.nlink), [undefined, 1, 1]);
  });
});

test('chown drops setuid and setgid+x like the kernel does for Docker; setgid without g+x stays', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY suid sg /m/');
    assert.deepEqual(env.tree('m'), [d('m', 0o755, NEW), f('m/sg', 0o2644, 'G', { nlink: 1 }), f('m/suid', 0o755, 'S', { nlink: 1 })]);
  });
});

test('replacing: a file over a file; a file into an existing dir; symlinked destinations resolve inside the rootfs', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY x.sh /existing');
    assert.deepEqual(env.tree('existing'), [f('existing', 0o755, '#!/bin/sh\n', { nlink: 1 })]);
    await env.copy('COPY f.txt /bin');
    assert.deepEqual(env.tree('bin'), [d('bin', 0o755, NEW), f('bin/f.txt', 0o644, 'hello\n', { nlink: 1 })]);
    await env.copy('COPY f.txt /lnk/');
    await env.copy('COPY d /lnk');
    assert.equal(lstatSync(join(env.rootfs, 'lnk')).isSymbolicLink(), true);
    assert.deepEqual(env.tree('tmp').map((e) => e.path), ['tmp', 'tmp/a', 'tmp/f.txt', 'tmp/ln', 'tmp/sub', 'tmp/sub/b']);
    assert.deepEqual(env.tree('tmp')[0], d('tmp', 0o1777, NEW));
    // A directory where the file goes is replaced by the file.
    await env.copy('COPY d /x/f.txt');
    await env.copy('COPY f.txt /x/');
    assert.deepEqual(env.tree('x/f.txt'), [f('x/f.txt', 0o644, 'hello\n', { nlink: 1 })]);
  });
});

test('relative destinations follow WORKDIR', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY f.txt .', { workdir: '/w' });
    await env.copy('COPY f.txt rel', { workdir: '/w' });
    assert.deepEqual(env.tree('w'), [d('w', 0o711, NEW), f('w/f.txt', 0o644, 'hello\n', { nlink: 1 }), f('w/rel', 0o644, 'hello\n', { nlink: 1 })]);
  });
});

test('errors: a directory onto a file, a path through a file, unknown users', async () => {
  await withEnv(async (env) => {
    const fails = async (line: string, message: string): Promise<void> => {
      await assert.rejects(env.copy(line), (e: unknown) => {
        assert.ok(e instanceof CopyError);
        assert.equal(e.message, message);
        return true;
      });
    };
    await fails('COPY d /etc/passwd', 'failed to copy files: failed to copy directory: mkdir /etc/passwd: not a directory');
    await fails('COPY d /etc/passwd/', 'failed to copy files: failed to copy directory: mkdir /etc/passwd: not a directory');
    await fails('COPY f.txt /etc/passwd/x', 'failed to copy files: lstat /etc/passwd/x: not a directory');
    await fails('COPY f.txt /etc/passwd/', 'failed to copy files: failed to create new directory: mkdir /etc/passwd: not a directory');
    await fails('COPY --chown=nosuch f.txt /x', "unable to convert uid/gid chown string to host mapping: can't find uid for user nosuch: no such user: nosuch");
    await fails('COPY --chown=1:nogrp f.txt /x', "unable to convert uid/gid chown string to host mapping: can't find gid for group nogrp: no such group: nogrp");
    await fails('COPY --chown=a:b:c f.txt /x', 'unable to convert uid/gid chown string to host mapping: invalid chown string format: a:b:c');
  });
});

test('resolveChown: numbers as they are, names from the rootfs, user spec used for the group', async () => {
  await withEnv(async (env) => {
    assert.deepEqual(await resolveChown('1234', env.rootfs), { uid: 1234, gid: 1234 });
    assert.deepEqual(await resolveChown('app', env.rootfs), { uid: 1000, gid: 1000 });
    assert.deepEqual(await resolveChown('0:staff', env.rootfs), { uid: 0, gid: 50 });
  });
  await withEnv(
    async (env) => {
      await assert.rejects(resolveChown('app', env.rootfs), { message: "unable to convert uid/gid chown string to host mapping: can't find uid for user app: open /etc/passwd: no such file or directory" });
    },
    { rootfs: [{ path: 'x' }] },
  );
});

test('--chmod applies to copied files and dirs (not symlinks, not an existing destination)', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY --chmod=640 d /cd');
    assert.deepEqual(
      env.tree('cd').map((e) => [e.path, e.mode]),
      [['cd', '0640'], ['cd/a', '0640'], ['cd/ln', '0777'], ['cd/sub', '0640'], ['cd/sub/b', '0640']],
    );
    await env.copy('COPY --chmod=u+x,go-r,o+X d /tmp/');
    assert.deepEqual(
      env.tree('tmp').map((e) => [e.path, e.mode]),
      // Clauses apply in order; X looks at the mode as changed so far (u+x made files executable).
      [['tmp', '1777'], ['tmp/a', '0701'], ['tmp/ln', '0777'], ['tmp/sub', '0701'], ['tmp/sub/b', '0701']],
    );
  });
  const fn = parseChmod('a=rX,u+w');
  assert.equal(fn(0o700, true), 0o755);
  assert.equal(fn(0o600, false), 0o644);
  assert.equal(fn(0o700, false), 0o755);
  assert.equal(parseChmod('go=u')(0o750, false), 0o777);
  assert.equal(parseChmod('0755')(0o4600, false), 0o755);
  assert.throws(() => parseChmod('x+q'), /invalid chmod parameter/);
});

test('COPY --from keeps the source owners unless --chown', async () => {
  await withEnv(async (env) => {
    const stage = join(env.rootfs, '..', 'stage');
    mkTree(stage, [{ path: 'opt/app', type: 'dir', uid: 1000, gid: 1000, mode: 0o750 }, { path: 'opt/app/bin', content: 'B', uid: 1000, gid: 50, mode: 0o755 }]);
    const tree = new DirTree(stage);
    await env.copy('COPY --from=s /opt/app /app', { tree });
    assert.deepEqual(env.tree('app'), [d('app', 0o755, NEW), f('app/bin', 0o755, 'B', { uid: 1000, gid: 50, nlink: 1 })]);
    await env.copy('COPY --from=s --chown=0:0 /opt/app /app2', { tree });
    assert.deepEqual(env.tree('app2'), [d('app2', 0o755, NEW), f('app2/bin', 0o755, 'B', { nlink: 1 })]);
  });
});

test('ADD extracts local archives (tar, gzip, bzip2, xz) without a chown fix-up; other files are copied', async () => {
  const arch: Spec[] = [
    { path: 'src/a', content: 'A', mode: 0o600, mtime: 1500000000, uid: 123, gid: 456 },
    { path: 'src/sub', type: 'dir', mode: 0o700, mtime: 1500000000, uid: 123, gid: 456 },
    { path: 'src/sub/b', content: 'B', mtime: 1500000000, uid: 123, gid: 456 },
    { path: 'src/sub/hb', type: 'hardlink', target: 'src/sub/b' },
    { path: 'src/abs', type: 'symlink', target: '/etc', mtime: 1500000000 },
  ];
  await withEnv(
    async (env) => {
      const c = env.ctxDir;
      const src = join(c, 'src');
      execFileSync('sh', ['-c', `tar --numeric-owner -cf a.tar -C src . && tar --numeric-owner -czf a.tgz -C src . && tar -cf - -C src a | bzip2 > a.tbz && tar -cf - -C src sub | xz > a.txz && printf plain | gzip -n > p.gz && printf tiny > tiny.tar && rm -rf src`], { cwd: c });
      execFileSync('touch', ['-d', `@${T0}`, 'a.tar', 'a.tgz', 'a.tbz', 'a.txz', 'p.gz', 'tiny.tar'], { cwd: c });
      void src;
      const ctx = await loadBuildContext({ contextDir: c, ignore: null });
      const add = async (line: string): Promise<void> => {
        const plan = await resolveCopy(instr(line), { tree: ctx, workdir: '' });
        await copyFiles({ rootfs: env.rootfs, plan });
      };
      const o = { uid: 123, gid: 456, mtime: 1500000000 };
      const extracted = [
        f('t/a', 0o600, 'A', { ...o, nlink: 1 }),
        { ...l('t/abs', '/etc'), mtime: 1500000000 },
        d('t/sub', 0o700, o),
        f('t/sub/b', 0o644, 'B', { ...o, nlink: 2 }),
        f('t/sub/hb', 0o644, 'B', { ...o, nlink: 2 }),
      ];
      await add('ADD --chown=1:1 a.tar /t');
      assert.deepEqual(env.tree('t'), [d('t', 0o755, NEW), ...extracted]);
      await add('ADD a.tgz /t2/');
      assert.deepEqual(env.tree('t2'), [d('t2', 0o755, NEW), ...extracted.map((e) => ({ ...e, path: e.path.replace(/^t\//, 't2/') }))]);
      await add('ADD a.tbz a.txz /t3/');
      assert.deepEqual(env.tree('t3').map((e) => [e.path, e.mode, e.uid]), [['t3', '0755', 0], ['t3/a', '0600', 123], ['t3/sub', '0700', 123], ['t3/sub/b', '0644', 123], ['t3/sub/hb', '0644', 123]]);
      await add('ADD p.gz tiny.tar /t4/');
      assert.deepEqual(env.tree('t4').map((e) => [e.path, e.type]), [['t4', 'dir'], ['t4/p.gz', 'file'], ['t4/tiny.tar', 'file']]);
      assert.equal(readFileSync(join(env.rootfs, 't4/tiny.tar'), 'utf8'), 'tiny');
      // Extracting over existing content: files replaced, directories merged.
      await add('ADD a.tgz /t/');
      assert.deepEqual(env.tree('t'), [d('t', 0o755, NEW), ...extracted]);
    },
    { context: [{ path: 'placeholder', content: '' }, ...arch] },
  );
});
