/**
 * ADD of git sources: a bare repository served by `git daemon` on 127.0.0.1 (started and
 * stopped here), cloned into a staging dir and copied into a plain directory; exact trees.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { loadBuildContext } from '../../src/context/tree.js';
import { resolveCopy } from '../../src/context/sources.js';
import { copyFiles } from '../../src/exec/copy-files.js';
import { isGitSource, needsStaging, parseGitRef, stageSources } from '../../src/exec/copy-stage.js';
import type { CopyInstruction } from '../../src/instructions/types.js';
import { runBuild } from '../../src/exec/run-build.js';
import { ImageStore } from '../../src/store/store.js';
import { d, f, l, listTree, mkTree, tempDir, type Listed } from '../context/tree-helpers.js';

const hasGit = (() => {
  try {
    execFileSync('git', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip = !hasGit ? 'needs git' : process.getuid?.() !== 0 ? 'needs root (chown to 0:0)' : undefined;

let tmp: { dir: string; cleanup: () => void } | undefined;
let daemon: ChildProcess | undefined;
let base = '';
let firstCommit = '';

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'init.defaultBranch=main', ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_DATE: '2021-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2021-01-01T00:00:00Z' },
  }).trim();
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1');
      s.on('connect', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('git daemon did not start');
}

before(async () => {
  if (skip !== undefined) return;
  tmp = tempDir('tsb-git-');
  const work = join(tmp.dir, 'work');
  mkTree(work, [
    { path: 'README', content: 'v1\n', mode: 0o600 },
    { path: 'bin/run.sh', content: '#!/bin/sh\n', mode: 0o750 },
    { path: 'lib/sub/x.txt', content: 'x\n' },
    { path: 'link', type: 'symlink', target: 'README' },
  ]);
  git(work, 'init', '-q');
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'one');
  firstCommit = git(work, 'rev-parse', 'HEAD');
  git(work, 'tag', 'v1');
  mkTree(work, [{ path: 'README', content: 'v2 two\n' }]);
  git(work, 'commit', '-q', '-am', 'two');
  git(work, 'checkout', '-q', '-b', 'feature');
  mkTree(work, [{ path: 'feature.txt', content: 'f\n' }]);
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'three');
  git(work, 'checkout', '-q', 'main');
  const served = join(tmp.dir, 'served');
  mkdirSync(served);
  git(tmp.dir, 'clone', '-q', '--bare', work, join(served, 'repo.git'));
  const port = await freePort();
  daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${served}`, '--listen=127.0.0.1', `--port=${port}`, served], { stdio: 'ignore' });
  await waitForPort(port);
  base = `git://127.0.0.1:${port}`;
});

after(() => {
  daemon?.kill('SIGTERM');
  tmp?.cleanup();
});

function add(sources: string[], dest: string, extra: Partial<CopyInstruction> = {}): CopyInstruction {
  return { kind: 'ADD', sources, dest, link: false, parents: false, exclude: [], heredocs: [], keepGitDir: false, ...extra };
}

/** Stage, hash and copy into a fresh rootfs; the listing of `dest` and the hash. */
async function run(instr: CopyInstruction, epoch?: number): Promise<{ tree: Listed[]; hash: string }> {
  const t = tempDir('tsb-gitcopy-');
  try {
    const rootfs = join(t.dir, 'rootfs');
    mkdirSync(rootfs);
    const staged = await stageSources(instr, t.dir, epoch !== undefined ? { epoch } : {});
    try {
      const tree = await loadBuildContext({ contextDir: staged.contextDir, ignore: null });
      const plan = await resolveCopy(staged.instruction, { tree, workdir: '/' });
      const start = Math.floor(Date.now() / 1000);
      await copyFiles({ rootfs, plan });
      const top = instr.dest.replace(/^\/+|\/+$/g, '');
      const listed = listTree(join(rootfs, top), { withRoot: true }).map((e) => ({
        ...e,
        path: e.path === '.' ? top : `${top}/${e.path}`,
        mtime: e.mtime >= start && e.mtime !== epoch ? -1 : e.mtime,
      }));
      return { tree: listed, hash: plan.hash };
    } finally {
      await staged.dispose();
    }
  } finally {
    t.cleanup();
  }
}

const NEW = { mtime: -1 };

test('git source detection and ref parsing', () => {
  for (const s of ['https://github.com/moby/buildkit.git', 'https://h/r.git#v1:docs', 'git@github.com:moby/buildkit.git', 'git://h/r', 'ssh://git@h/r.git', 'file:///srv/r.git#v1']) assert.equal(isGitSource(s), true, s);
  for (const s of ['https://h/file.tar.gz', 'http://h/r.gitx', 'dir/repo.git', 'file:///srv/a.tar']) assert.equal(isGitSource(s), false, s);
  assert.deepEqual(parseGitRef('https://h/r.git#v1:docs/'), { remote: 'https://h/r.git', ref: 'v1', subdir: 'docs' });
  assert.deepEqual(parseGitRef('https://h/r.git#:sub'), { remote: 'https://h/r.git', subdir: 'sub' });
  assert.deepEqual(parseGitRef('git@h:r.git'), { remote: 'git@h:r.git' });
  assert.equal(needsStaging(add(['git@h:r.git'], '/x')), true);
  assert.equal(needsStaging({ ...add(['git@h:r.git'], '/x'), kind: 'COPY' }), false);
});

test('ADD <repo.git> copies the default branch, without .git, normalized, mtime 0', { skip }, async () => {
  const { tree, hash } = await run(add([`${base}/repo.git`], '/src'));
  assert.deepEqual(tree, [
    d('src', 0o755, NEW),
    f('src/README', 0o644, 'v2 two\n', { mtime: 0 }),
    d('src/bin', 0o755, { mtime: 0 }),
    f('src/bin/run.sh', 0o755, '#!/bin/sh\n', { mtime: 0 }),
    d('src/lib', 0o755, { mtime: 0 }),
    d('src/lib/sub', 0o755, { mtime: 0 }),
    f('src/lib/sub/x.txt', 0o644, 'x\n', { mtime: 0 }),
    l('src/link', 'README', { mtime: 0 }),
  ]);
  assert.match(hash, /^dir:[0-9a-f]{64}$/);
  // The same commit hashes the same (the cache key is stable).
  assert.equal((await run(add([`${base}/repo.git#main`], '/src'))).hash, hash);
});

test('ADD <repo.git>#tag, #branch, #commit and #ref:subdir; SOURCE_DATE_EPOCH sets the mtimes', { skip }, async () => {
  const tag = await run(add([`${base}/repo.git#v1`], '/t'), 1234);
  assert.deepEqual(tag.tree.find((e) => e.path === 't/README'), f('t/README', 0o644, 'v1\n', { mtime: 1234 }));
  assert.deepEqual(tag.tree.find((e) => e.path === 't/lib'), d('t/lib', 0o755, { mtime: 1234 }));
  const branch = await run(add([`${base}/repo.git#feature`], '/b'));
  assert.deepEqual(branch.tree.find((e) => e.path === 'b/feature.txt'), f('b/feature.txt', 0o644, 'f\n', { mtime: 0 }));
  // A commit that is no branch or tag tip: the shallow fetch may be refused, the full fetch finds it.
  const commit = await run(add([`${base}/repo.git#${firstCommit}`], '/c'));
  assert.equal(commit.tree.find((e) => e.path === 'c/README')?.data, 'v1\n');
  assert.equal(commit.tree.some((e) => e.path === 'c/feature.txt'), false);
  const sub = await run(add([`${base}/repo.git#v1:lib`], '/s/', { chown: '0:0' }));
  assert.deepEqual(sub.tree, [d('s', 0o755, NEW), d('s/sub', 0o755, { mtime: 0 }), f('s/sub/x.txt', 0o644, 'x\n', { mtime: 0 })]);
});

test('ADD --keep-git-dir keeps a working .git; a missing ref fails', { skip }, async () => {
  const t = tempDir('tsb-gitkeep-');
  try {
    const staged = await stageSources(add([`${base}/repo.git#feature`], '/k', { keepGitDir: true }), t.dir);
    try {
      const repo = join(staged.contextDir, staged.instruction.sources[0] as string);
      assert.equal(existsSync(join(repo, '.git')), true);
      assert.equal(git(repo, 'log', '-1', '--format=%s'), 'three');
    } finally {
      await staged.dispose();
    }
    await assert.rejects(stageSources(add([`${base}/repo.git#no-such-ref`], '/k'), t.dir), /ADD_GIT|not found|failed/);
  } finally {
    t.cleanup();
  }
});

test('a build ADDs git sources over dumb http and file:// with no ssh agent at all', { skip }, async (t) => {
  const served = join(tmp!.dir, 'served');
  git(join(served, 'repo.git'), 'update-server-info');
  // A plain static file server: git's dumb HTTP protocol (no shallow fetch: the full fetch is used).
  const http = createHttpServer((req, res) => {
    try {
      res.end(readFileSync(join(served, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname))));
    } catch {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.after(() => http.close());
  const port = (http.address() as AddressInfo).port;
  const dir = tempDir('tsb-gitbuild-');
  t.after(() => dir.cleanup());
  const ctx = join(dir.dir, 'ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), `FROM scratch\nADD http://127.0.0.1:${port}/repo.git#v1 /http/\nADD file://${served}/repo.git#feature:lib /file/\n`);
  const root = join(dir.dir, 'root');
  const saved = process.env['SSH_AUTH_SOCK'];
  process.env['SSH_AUTH_SOCK'] = join(dir.dir, 'no-agent.sock');
  try {
    await runBuild({ root, contextDir: ctx, tags: ['g'] });
  } finally {
    if (saved === undefined) delete process.env['SSH_AUTH_SOCK'];
    else process.env['SSH_AUTH_SOCK'] = saved;
  }
  const store = await ImageStore.open(root);
  const [first, second] = await store.layerChain(await store.require('g'));
  const diff = (l: typeof first) => join(store.overlay.dirOf(l!.cacheId), 'diff');
  assert.equal(readFileSync(join(diff(first), 'http/README'), 'utf8'), 'v1\n');
  assert.equal(existsSync(join(diff(first), 'http/.git')), false);
  assert.equal(readFileSync(join(diff(second), 'file/sub/x.txt'), 'utf8'), 'x\n');
});
