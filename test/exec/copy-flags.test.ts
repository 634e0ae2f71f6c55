/**
 * BuildKit's COPY/ADD flags on exact trees: --exclude, --parents, ADD --unpack and .tar.zst
 * archives. Trees are copied into a plain directory (no rootfs worker), as copy-files.test.ts does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { loadBuildContext } from '../../src/context/tree.js';
import { resolveCopy, splitPivot } from '../../src/context/sources.js';
import { copyFiles } from '../../src/exec/copy-files.js';
import { stageSources } from '../../src/exec/copy-stage.js';
import { readFileSync } from 'node:fs';
import type { CopyInstruction } from '../../src/instructions/types.js';
import { d, f, l, listTree, mkTree, T0, tempDir, type Listed, type Spec } from '../context/tree-helpers.js';

const T1 = T0 + 1000;

const CONTEXT: Spec[] = [
  { path: 'top.txt', content: 'top' },
  { path: 'home.md', content: 'home md' },
  { path: 'home.txt', content: 'home txt' },
  { path: 'homer', content: 'homer', mode: 0o755 },
  { path: 'app', type: 'dir', mode: 0o750, mtime: T1 },
  { path: 'app/main.go', content: 'package main' },
  { path: 'app/notes.txt', content: 'notes' },
  { path: 'app/keep.txt', content: 'keep' },
  { path: 'app/ln', type: 'symlink', target: 'main.go' },
  { path: 'app/sub', type: 'dir', mode: 0o700, mtime: T1 },
  { path: 'app/sub/x.txt', content: 'x' },
  { path: 'app/sub/y.go', content: 'y', mode: 0o600 },
  { path: 'app/vendor', type: 'dir', mode: 0o711, mtime: T1 },
  { path: 'app/vendor/v.go', content: 'v' },
  { path: 'app/vendor/keep.me', content: 'kept' },
  { path: 'x', type: 'dir', mode: 0o751, mtime: T1 },
  { path: 'x/a.txt', content: 'xa' },
  { path: 'x/b.md', content: 'xb' },
  { path: 'x/y', type: 'dir', mode: 0o705, mtime: T1 },
  { path: 'x/y/c.txt', content: 'xyc', mode: 0o640 },
  { path: 'x/y/z', type: 'dir', mode: 0o700, mtime: T1 },
  { path: 'x/y/z/d.txt', content: 'xyzd' },
];

const ROOTFS: Spec[] = [
  { path: 'etc', type: 'dir' },
  { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' },
  { path: 'etc/group', content: 'root:x:0:\napp:x:1000:\n' },
];

function instr(line: string): CopyInstruction {
  const words = line.split(/\s+/);
  const kind = words.shift() as 'COPY' | 'ADD';
  const out: CopyInstruction = { kind, sources: [], dest: '', link: false, parents: false, exclude: [], heredocs: [] };
  while (words[0]?.startsWith('--')) {
    const w = (words.shift() as string).slice(2);
    const eq = w.indexOf('=');
    const k = eq < 0 ? w : w.slice(0, eq);
    const v = eq < 0 ? 'true' : w.slice(eq + 1);
    if (k === 'chown' || k === 'chmod' || k === 'from') out[k] = v;
    else if (k === 'exclude') out.exclude.push(v);
    else if (k === 'parents') out.parents = v === 'true';
    else if (k === 'link') out.link = v === 'true';
    else if (k === 'unpack') out.unpack = v === 'true';
  }
  out.dest = words.pop() as string;
  out.sources = words;
  return out;
}

interface Env {
  ctxDir: string;
  copy(line: string): Promise<string>;
  hash(line: string): Promise<string>;
  /** Everything under `sub` of the rootfs; mtimes this test wrote are 0. */
  tree(sub: string): Listed[];
}

async function withEnv(fn: (env: Env) => Promise<void>, context: Spec[] = CONTEXT, prepare?: (ctxDir: string) => void): Promise<void> {
  const t = tempDir('tsb-flags-');
  try {
    const ctxDir = join(t.dir, 'ctx');
    const rootfs = join(t.dir, 'rootfs');
    mkTree(ctxDir, context);
    prepare?.(ctxDir);
    mkTree(rootfs, ROOTFS);
    const ctx = await loadBuildContext({ contextDir: ctxDir, ignore: null });
    const start = Math.floor(Date.now() / 1000);
    await fn({
      ctxDir,
      async copy(line) {
        const plan = await resolveCopy(instr(line), { tree: ctx, workdir: '' });
        return (await copyFiles({ rootfs, plan })).hash;
      },
      async hash(line) {
        return (await resolveCopy(instr(line), { tree: ctx, workdir: '' })).hash;
      },
      tree(sub) {
        return listTree(join(rootfs, sub), { withRoot: true }).map((e) => ({ ...e, path: e.path === '.' ? sub : `${sub}/${e.path}`, mtime: e.mtime >= start ? 0 : e.mtime }));
      },
    });
  } finally {
    t.cleanup();
  }
}

const NEW = { mtime: 0 };

// ------------------------------------------------------------------------------------------
// --exclude

test('--exclude: patterns are relative to a directory source, with .dockerignore rules', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY --exclude=*.txt --exclude=vendor app /out');
    assert.deepEqual(env.tree('out'), [
      d('out', 0o755, NEW),
      l('out/ln', 'main.go'),
      f('out/main.go', 0o644, 'package main'),
      d('out/sub', 0o700, { mtime: T1 }),
      // `*.txt` does not cross `/`: sub/x.txt stays (BuildKit issue 5509).
      f('out/sub/x.txt', 0o644, 'x'),
      f('out/sub/y.go', 0o600, 'y'),
    ]);
  });
});

test('--exclude: `**` reaches every level; an exception re-includes under an excluded directory', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY --exclude=**/*.txt --exclude=!keep.txt --exclude=vendor --exclude=!vendor/keep.me app /out/');
    assert.deepEqual(env.tree('out'), [
      d('out', 0o755, NEW),
      f('out/keep.txt', 0o644, 'keep'),
      l('out/ln', 'main.go'),
      f('out/main.go', 0o644, 'package main'),
      d('out/sub', 0o700, { mtime: T1 }),
      f('out/sub/y.go', 0o600, 'y'),
      // The excluded directory is created (with its own metadata) only for what it holds.
      d('out/vendor', 0o711, { mtime: T1 }),
      f('out/vendor/keep.me', 0o644, 'kept'),
    ]);
  });
});

test('--exclude: wildcard matches are tested by name; a named file is never excluded; --chown applies', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY --exclude=*.txt --exclude=*.md hom* /w/');
    assert.deepEqual(env.tree('w'), [d('w', 0o755, NEW), f('w/homer', 0o755, 'homer')]);
    await env.copy('COPY --exclude=top.txt --chown=1000:1000 top.txt /n/');
    assert.deepEqual(env.tree('n'), [d('n', 0o755, { ...NEW, uid: 1000, gid: 1000 }), f('n/top.txt', 0o644, 'top', { uid: 1000, gid: 1000 })]);
  });
});

test('--exclude: excluded paths are not hashed; excluding nothing keeps the plain hash', async () => {
  await withEnv(async (env) => {
    const plain = await env.hash('COPY app /out');
    assert.equal(await env.hash('COPY --exclude=nothing-here app /out'), plain);
    const a = await env.hash('COPY --exclude=notes.txt app /out');
    assert.notEqual(a, plain);
    assert.match(a, /^dir:[0-9a-f]{64}$/);
  });
  // The same included files hash the same whatever the excluded files hold.
  let h1 = '';
  await withEnv(async (env) => {
    h1 = await env.hash('COPY --exclude=notes.txt app /out');
  });
  const changed = CONTEXT.map((s) => (s.path === 'app/notes.txt' ? { ...s, content: 'other' } : s));
  await withEnv(async (env) => {
    assert.equal(await env.hash('COPY --exclude=notes.txt app /out'), h1);
    assert.notEqual(await env.hash('COPY app /out'), h1);
  }, changed);
});

test('--exclude: a wildcard whose every match is excluded copies nothing and is no error', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY --exclude=* hom* /none/');
    assert.deepEqual(listTree(join(env.ctxDir, '..', 'rootfs')).map((e) => e.path), ['etc', 'etc/group', 'etc/passwd']);
  });
});

// ------------------------------------------------------------------------------------------
// --parents

test('splitPivot: a `/./` in the source is the pivot', () => {
  assert.deepEqual(splitPivot('x/y/a.txt'), { pivot: '.', rest: 'x/y/a.txt' });
  assert.deepEqual(splitPivot('./x/./y/a.txt'), { pivot: 'x', rest: 'y/a.txt' });
  assert.deepEqual(splitPivot('/x/y/./z'), { pivot: 'x/y', rest: 'z' });
  assert.deepEqual(splitPivot('./x'), { pivot: '.', rest: './x' });
});

test('--parents: files keep their context path; parents are made with the source dirs mode and mtime', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY --parents x/a.txt ./x/y/c.txt top.txt /dst/');
    assert.deepEqual(env.tree('dst'), [
      d('dst', 0o755, NEW),
      f('dst/top.txt', 0o644, 'top'),
      d('dst/x', 0o751, { mtime: T1 }),
      f('dst/x/a.txt', 0o644, 'xa'),
      d('dst/x/y', 0o705, { mtime: T1 }),
      f('dst/x/y/c.txt', 0o640, 'xyc'),
    ]);
  });
});

test('--parents: wildcards, a `/./` pivot, directory sources, --exclude relative to the pivot', async () => {
  await withEnv(async (env) => {
    await env.copy('COPY --parents x/*.txt x/y/*.txt /w/');
    assert.deepEqual(env.tree('w'), [
      d('w', 0o755, NEW),
      d('w/x', 0o751, { mtime: T1 }),
      f('w/x/a.txt', 0o644, 'xa'),
      d('w/x/y', 0o705, { mtime: T1 }),
      f('w/x/y/c.txt', 0o640, 'xyc'),
    ]);
    await env.copy('COPY --parents ./x/./y/z/d.txt /p/');
    assert.deepEqual(env.tree('p'), [d('p', 0o755, NEW), d('p/y', 0o705, { mtime: T1 }), d('p/y/z', 0o700, { mtime: T1 }), f('p/y/z/d.txt', 0o644, 'xyzd')]);
    await env.copy('COPY --parents --exclude=**/*.txt x/y /q/');
    assert.deepEqual(env.tree('q'), [d('q', 0o755, NEW), d('q/x', 0o751, { mtime: T1 }), d('q/x/y', 0o705, { mtime: T1 }), d('q/x/y/z', 0o700, { mtime: T1 })]);
    await env.copy('COPY --parents --exclude=y/c.txt --chown=1000:1000 x/./y /r/');
    assert.deepEqual(env.tree('r'), [
      d('r', 0o755, { ...NEW, uid: 1000, gid: 1000 }),
      d('r/y', 0o705, { mtime: T1, uid: 1000, gid: 1000 }),
      d('r/y/z', 0o700, { mtime: T1, uid: 1000, gid: 1000 }),
      f('r/y/z/d.txt', 0o644, 'xyzd', { uid: 1000, gid: 1000 }),
    ]);
  });
});

test('--parents: the path under the destination is part of the hash', async () => {
  await withEnv(async (env) => {
    const plain = await env.hash('COPY x/a.txt /d/');
    const parents = await env.hash('COPY --parents x/a.txt /d/');
    const pivoted = await env.hash('COPY --parents x/./a.txt /d/');
    assert.match(parents, /^parents:[0-9a-f]{64}$/);
    assert.equal(new Set([plain, parents, pivoted]).size, 3);
    assert.match(await env.hash('COPY --parents x/a.txt x/b.md /d/'), /^multi:[0-9a-f]{64}$/);
  });
});

// ------------------------------------------------------------------------------------------
// ADD archives: --unpack and zstd

function makeTar(ctxDir: string, name: string, compress: string[] | undefined): void {
  const src = join(ctxDir, '..', 'tarsrc');
  mkTree(src, [
    { path: 'pkg', type: 'dir', mode: 0o750, uid: 5, gid: 6 },
    { path: 'pkg/bin', content: 'BIN', mode: 0o755, uid: 5, gid: 6 },
  ]);
  const tar = join(ctxDir, name.replace(/\.(zst|gz)$/, ''));
  execFileSync('tar', ['--numeric-owner', '-cf', tar, '-C', src, 'pkg']);
  if (compress) execFileSync(compress[0] as string, [...compress.slice(1), tar]);
  execFileSync('touch', ['-d', '@1600000000', join(ctxDir, name)]);
}

const hasZstd = (() => {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test('ADD a .tar.zst extracts it with `zstd -dc`', { skip: hasZstd ? undefined : 'needs zstd' }, async () => {
  await withEnv(
    async (env) => {
      await env.copy('ADD a.tar.zst /opt/');
      assert.deepEqual(env.tree('opt'), [d('opt', 0o755, NEW), d('opt/pkg', 0o750, { uid: 5, gid: 6 }), f('opt/pkg/bin', 0o755, 'BIN', { uid: 5, gid: 6 })]);
    },
    [],
    (ctx) => makeTar(ctx, 'a.tar.zst', ['zstd', '-q', '--rm']),
  );
});

test('ADD --unpack=false copies an archive as a file; COPY never unpacks', async () => {
  await withEnv(
    async (env) => {
      await env.copy('ADD --unpack=false a.tar.gz /keep/');
      const listed = env.tree('keep');
      assert.deepEqual(listed.map((e) => [e.path, e.type, e.mode, e.uid, e.gid]), [
        ['keep', 'dir', '0755', 0, 0],
        ['keep/a.tar.gz', 'file', '0644', 0, 0],
      ]);
      await env.copy('ADD --unpack=true a.tar.gz /x/');
      assert.deepEqual(env.tree('x'), [d('x', 0o755, NEW), d('x/pkg', 0o750, { uid: 5, gid: 6 }), f('x/pkg/bin', 0o755, 'BIN', { uid: 5, gid: 6 })]);
    },
    [],
    (ctx) => makeTar(ctx, 'a.tar.gz', ['gzip', '-n']),
  );
});

test('ADD <url>: a downloaded archive stays a file; --unpack=true extracts it', async () => {
  await withEnv(
    async (env) => {
      const body = readFileSync(join(env.ctxDir, 'a.tar.gz'));
      const fetchImpl = (async () => new Response(body, { status: 200 })) as typeof fetch;
      for (const [unpack, expectArchive] of [[undefined, true], [false, true], [true, false]] as const) {
        const t = tempDir('tsb-url-');
        try {
          const rootfs = join(t.dir, 'rootfs');
          mkTree(rootfs, []);
          const ins = instr('ADD http://h/files/a.tar.gz /dl/');
          if (unpack !== undefined) ins.unpack = unpack;
          const staged = await stageSources(ins, t.dir, { fetchImpl });
          const ctx = await loadBuildContext({ contextDir: staged.contextDir, ignore: null });
          await copyFiles({ rootfs, plan: await resolveCopy(staged.instruction, { tree: ctx, workdir: '' }) });
          await staged.dispose();
          const names = listTree(join(rootfs, 'dl')).map((e) => [e.path, e.mode, e.uid, e.gid]);
          assert.deepEqual(names, expectArchive ? [['a.tar.gz', '0600', 0, 0]] : [['pkg', '0750', 5, 6], ['pkg/bin', '0755', 5, 6]], `unpack=${unpack}`);
        } finally {
          t.cleanup();
        }
      }
    },
    [],
    (ctx) => makeTar(ctx, 'a.tar.gz', ['gzip', '-n']),
  );
});

// ------------------------------------------------------------------------------------------
// --link

test('COPY --link is accepted and copies like COPY (same tree, same hash)', async () => {
  await withEnv(async (env) => {
    const h1 = await env.copy('COPY x /a');
    const h2 = await env.copy('COPY --link x /b');
    assert.equal(h1, h2);
    assert.deepEqual(env.tree('b').map((e) => ({ ...e, path: e.path.replace(/^b/, 'a') })), env.tree('a'));
  });
});
