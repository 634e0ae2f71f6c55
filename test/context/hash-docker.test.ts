/**
 * COPY/ADD against a real dockerd 20.10 classic builder (DOCKER_BUILDKIT=0):
 *
 * 1. A context with files of several modes, an empty file, symlinks, hard links, a directory with
 *    a file capability, archives and a .dockerignore is built with many COPY/ADD steps by the
 *    20.10 CLI (which sends modes with file-type bits: modeStyle 'typed'). Each step's history
 *    `created_by` must equal tsbuild's text, and tsbuild's copy, replayed step by step on the same
 *    busybox rootfs, must leave every path of the step's layer (the overlay upper dir) with the
 *    same type, mode, owner, size, link target, link count and (for source-dated entries) mtime.
 * 2. Docker's error for each failing instruction must equal tsbuild's.
 * 3. A context sent as a tar with permission-only modes (what current clients send; modeStyle
 *    'perm') must give the same hashes as tsbuild's default.
 *
 * Skipped with the reason when docker cannot run here (CI installs docker.io).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { loadBuildContext, DirTree, type SourceTree } from '../../src/context/tree.js';
import { resolveCopy } from '../../src/context/sources.js';
import { copyFiles } from '../../src/exec/copy-files.js';
import { extractArchive } from '../../src/exec/copy-archive.js';
import type { CopyInstruction } from '../../src/instructions/types.js';
import { busyboxRootfsTar, dockerUnavailableReason, importBusyboxBase, startDockerd, type Dockerd } from '../support/dockerd.js';
import { mkTree, T0, tempDir } from './tree-helpers.js';

const reason = dockerUnavailableReason();

function makeContext(root: string): void {
  mkTree(root, [
    { path: 'f.txt', content: 'hello\n' },
    { path: 'x.sh', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
    { path: 'empty', content: '' },
    { path: 'suid', content: 'S', mode: 0o4755 },
    { path: 'sg2', content: 'G', mode: 0o2644 },
    { path: 'cap', content: 'C', mode: 0o755 },
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
    { path: 'tree/etc', type: 'dir', mode: 0o700 },
    { path: 'tree/etc/new', content: 'n' },
    { path: 'ign/drop', content: 'drop' },
    { path: 'ign/keep', content: 'keep' },
    { path: 'a.log', content: 'log' },
    { path: '.dockerignore', content: '*.log\nign\n!ign/keep\n' },
  ]);
  execFileSync('setfattr', ['-n', 'security.capability', '-v', '0x0100000200040000000000000000000000000000', join(root, 'cap')]);
  const arch = join(root, '..', 'arch');
  mkTree(arch, [{ path: 'a', content: 'A', mode: 0o600, mtime: 1500000000 }, { path: 'sub', type: 'dir', mode: 0o700, mtime: 1500000000 }, { path: 'sub/b', content: 'B', mtime: 1500000000 }]);
  execFileSync('tar', ['-czf', join(root, 'arch.tar.gz'), '-C', arch, '--owner=123', '--group=456', '--numeric-owner', '.']);
  execFileSync('sh', ['-c', `tar -cf - -C '${arch}' a | bzip2 > '${join(root, 'arch.tar.bz2')}'`]);
  execFileSync('sh', ['-c', `tar -cf - -C '${arch}' sub | xz > '${join(root, 'arch.tar.xz')}'`]);
  execFileSync('sh', ['-c', `printf 'not a tar\\n' | gzip -n > '${join(root, 'plain.gz')}'`]);
  execFileSync('touch', ['-h', '-d', `@${T0}`, join(root, 'arch.tar.gz'), join(root, 'arch.tar.bz2'), join(root, 'arch.tar.xz'), join(root, 'plain.gz'), root]);
}

/** Steps of the main build; `mimic` replays a non-COPY step on tsbuild's rootfs. */
interface Step {
  line: string;
  mimic?: (rootfs: string) => void;
  workdir?: string;
}

const STEPS: Step[] = [
  { line: 'COPY f.txt /' },
  { line: 'COPY d /d' },
  { line: 'COPY f.txt x.sh /multi/' },
  { line: 'COPY *.txt /w1/' },
  { line: 'COPY empty /e' },
  { line: 'COPY ln /lncopied' },
  { line: 'COPY ln dlink /lnd/' },
  { line: 'COPY suid sg2 cap /modes/' },
  { line: 'COPY --chown=1000:1000 d /a/b/c' },
  { line: 'COPY --chown=app f.txt /p/q/f' },
  { line: 'COPY --chown=1000:1000 d /tmp/' },
  { line: 'COPY hl /hl' },
  { line: 'COPY d2 /d2' },
  { line: 'COPY . /all' },
  { line: 'COPY tree/ /' },
  { line: 'COPY *.sh ./rel/' },
  { line: 'ADD arch.tar.gz /t/' },
  { line: 'ADD arch.tar.bz2 arch.tar.xz /t3/' },
  { line: 'ADD plain.gz /t4/' },
  { line: 'COPY ign /ign' },
  { line: 'COPY d/* /dstar/' },
  { line: 'COPY f.txt /bin' },
  { line: 'COPY x.sh /f.txt' },
  { line: 'RUN ln -s /tmp /lnk', mimic: (r) => symlinkSync('/tmp', join(r, 'lnk')) },
  { line: 'COPY f.txt /lnk/' },
  { line: 'COPY d /lnk' },
  { line: 'WORKDIR /w', mimic: (r) => mkdirSync(join(r, 'w'), { recursive: true }), workdir: '/w' },
  { line: 'COPY f.txt .', workdir: '/w' },
  { line: 'COPY f.txt rel', workdir: '/w' },
];

const ERROR_CASES = [
  'COPY ../x /',
  'COPY d/../../x /',
  'COPY nope /',
  'COPY *.nope /',
  'COPY f.txt x.sh /nodir',
  'COPY d /etc/passwd',
  'COPY a.log /',
  'COPY ign/drop /',
  'COPY d2/broken /b',
  'COPY f.txt /etc/passwd/x',
  'COPY f.txt /etc/passwd/',
  'COPY d /etc/passwd/',
  'COPY --chown=nosuch f.txt /x',
  'COPY --chown=1:nogrp f.txt /x',
  'COPY --chown=a:b:c f.txt /x',
];

/** Parse `COPY|ADD [--chown=x] src... dest` (no quoting needed here). */
function parseLine(line: string): CopyInstruction {
  const words = line.split(/\s+/);
  const kind = words.shift() as 'COPY' | 'ADD';
  const instr: CopyInstruction = { kind, sources: [], dest: '', link: false, parents: false, exclude: [], heredocs: [] };
  while (words[0]?.startsWith('--')) {
    const w = words.shift() as string;
    const [k, v] = w.slice(2).split('=') as [string, string];
    if (k === 'chown') instr.chown = v;
    if (k === 'from') instr.from = v;
  }
  instr.dest = words.pop() as string;
  instr.sources = words;
  return instr;
}

async function tsbuildCopy(tree: SourceTree, rootfs: string, line: string, workdir: string): Promise<string> {
  const plan = await resolveCopy(parseLine(line), { tree, workdir });
  await copyFiles({ rootfs, plan });
  return plan.historyText;
}

async function freshRootfs(dir: string): Promise<string> {
  const tarPath = join(dir, 'busybox.tar');
  writeFileSync(tarPath, busyboxRootfsTar());
  const rootfs = join(dir, `rootfs-${Math.random().toString(36).slice(2)}`);
  mkdirSync(rootfs);
  await extractArchive(tarPath, rootfs, '/');
  return rootfs;
}

interface Meta {
  type: string;
  mode: string;
  owner: string;
  size: number;
  link: string;
  nlink: number;
  mtime: number;
}

function metaOf(p: string): Meta | undefined {
  let st;
  try {
    st = lstatSync(p);
  } catch {
    return undefined;
  }
  const type = st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'o';
  return {
    type,
    mode: (st.mode & 0o7777).toString(8),
    owner: `${st.uid}:${st.gid}`,
    size: type === 'd' ? 0 : st.size,
    link: type === 'l' ? readlinkSync(p) : '',
    nlink: type === 'd' ? 0 : st.nlink,
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

function listUpper(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const n of readdirSync(join(dir, rel)).sort()) {
    const r = rel === '' ? n : `${rel}/${n}`;
    out.push(r);
    if (lstatSync(join(dir, r)).isDirectory()) out.push(...listUpper(dir, r));
  }
  return out;
}

async function build(d: Dockerd, args: string[], input?: Buffer): Promise<{ code: number; out: string }> {
  const r = await d.docker(['build', '--no-cache', ...args], { env: { DOCKER_BUILDKIT: '0' }, ...(input ? { input } : {}), timeoutMs: 180_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

async function history(d: Dockerd, image: string): Promise<Array<{ id: string; createdBy: string }>> {
  const h = await d.docker(['history', '--no-trunc', '--format', '{{.ID}}\t{{.CreatedBy}}', image]);
  assert.equal(h.code, 0, h.stderr);
  return h.stdout
    .trim()
    .split('\n')
    .map((l) => {
      const [id, createdBy] = l.split('\t') as [string, string];
      return { id, createdBy };
    })
    .reverse();
}

test('COPY/ADD hashes, trees and errors match the docker 20.10 classic builder', { skip: reason ?? false, timeout: 900_000 }, async () => {
  const tmp = tempDir('tsb-hashdock-');
  let d: Dockerd | undefined;
  try {
    d = await startDockerd();
    await importBusyboxBase(d, ['busybox:latest']);
    const ctxDir = join(tmp.dir, 'ctx');
    makeContext(ctxDir);
    const dockerfile = join(ctxDir, 'Dockerfile');
    writeFileSync(dockerfile, `FROM busybox\n${STEPS.map((s) => s.line).join('\n')}\n`);
    const buildStart = Math.floor(Date.now() / 1000) - 1;

    // --- 1. the main build: hashes and trees
    const b = await build(d, ['-t', 'copytest', ctxDir]);
    assert.equal(b.code, 0, b.out);
    const hist = (await history(d, 'copytest')).slice(1); // drop the base
    assert.equal(hist.length, STEPS.length);

    const ctx = await loadBuildContext({ contextDir: ctxDir, dockerfile, modeStyle: 'typed' });
    const rootfs = await freshRootfs(tmp.dir);
    let workdir = '';
    for (const [i, step] of STEPS.entries()) {
      const h = hist[i]!;
      if (step.workdir !== undefined) workdir = step.workdir;
      if (step.mimic) {
        step.mimic(rootfs);
        continue;
      }
      const text = await tsbuildCopy(ctx, rootfs, step.line, workdir);
      assert.equal(h.createdBy, `/bin/sh -c #(nop) ${text}`, `history of ${step.line}`);
      const upper: string = (await d.docker(['image', 'inspect', h.id, '--format', '{{.GraphDriver.Data.UpperDir}}'])).stdout.trim();
      for (const rel of listUpper(upper)) {
        const theirs: Meta = metaOf(join(upper, rel))!;
        const ours = metaOf(join(rootfs, rel));
        assert.ok(ours !== undefined, `${step.line}: ${rel} missing in tsbuild's rootfs`);
        // Directories the step created or changed carry the build's own time on both sides.
        const dated = theirs.mtime < buildStart;
        assert.deepEqual({ ...ours, mtime: dated ? ours.mtime : 0 }, { ...theirs, mtime: dated ? theirs.mtime : 0 }, `${step.line}: ${rel}`);
      }
    }

    // --- 2. errors
    for (const line of ERROR_CASES) {
      writeFileSync(dockerfile, `FROM busybox\n${line}\n`);
      const r = await build(d, ['-t', 'copyerr', ctxDir]);
      assert.notEqual(r.code, 0, `docker accepted ${line}`);
      const lastLine = r.out.trim().split('\n').pop() ?? '';
      const theirs = lastLine.replace(/\/\S*\/merged(?=\/)/g, '');
      const fresh = await freshRootfs(tmp.dir);
      const ectx = await loadBuildContext({ contextDir: ctxDir, dockerfile, modeStyle: 'typed' });
      const ours = await tsbuildCopy(ectx, fresh, line, '').then(
        () => 'no error',
        (e: Error) => e.message,
      );
      assert.equal(ours, theirs, line);
    }

    // --- 3. a context tar with permission-only modes (current clients)
    const ctx2 = join(tmp.dir, 'ctx2');
    mkTree(ctx2, [
      { path: 'f.txt', content: 'hello\n' },
      { path: 'x.sh', content: 'echo started\n', mode: 0o755 },
      { path: 'd', type: 'dir', mode: 0o750 },
      { path: 'd/a', content: 'AAA', mode: 0o600 },
      { path: 'd/sub/b', content: 'BB', mode: 0o640 },
      { path: 'hl/h1', content: 'hard' },
      { path: 'hl/h2', type: 'hardlink', target: 'hl/h1' },
      { path: 'ln', type: 'symlink', target: 'f.txt' },
    ]);
    const steps2 = ['COPY f.txt /', 'COPY d /d', 'COPY f.txt x.sh /m/', 'COPY hl /hl', 'COPY ln /l', 'COPY x.sh /startService.sh', 'COPY . /all'];
    writeFileSync(join(ctx2, 'Dockerfile'), `FROM busybox\n${steps2.join('\n')}\n`);
    const names = readdirSync(ctx2).sort();
    const tarBytes = execFileSync('tar', ['--sort=name', '--numeric-owner', '--owner=0', '--group=0', '-C', ctx2, '-cf', '-', ...names], { maxBuffer: 1 << 26 });
    const b2 = await build(d, ['-t', 'copyperm', '-'], tarBytes);
    assert.equal(b2.code, 0, b2.out);
    const hist2 = (await history(d, 'copyperm')).slice(1);
    const permCtx = await loadBuildContext({ contextDir: ctx2, ignore: null });
    const rootfs2 = await freshRootfs(tmp.dir);
    for (const [i, line] of steps2.entries()) {
      assert.equal(hist2[i]!.createdBy, `/bin/sh -c #(nop) ${await tsbuildCopy(permCtx, rootfs2, line, '')}`, `perm: ${line}`);
    }

    // --- 4. COPY --from a stage: hashes of a plain directory tree
    const steps3 = ['COPY --from=s /etc/passwd /fp', 'COPY --from=s /home /fh', 'COPY --from=s /bin/sh /fsh'];
    writeFileSync(dockerfile, `FROM busybox AS s\nFROM busybox\n${steps3.join('\n')}\n`);
    const b3 = await build(d, ['-t', 'copyfrom', ctxDir]);
    assert.equal(b3.code, 0, b3.out);
    const hist3 = (await history(d, 'copyfrom')).slice(1);
    const stage = new DirTree(await freshRootfs(tmp.dir));
    const rootfs3 = await freshRootfs(tmp.dir);
    for (const [i, line] of steps3.entries()) {
      assert.equal(hist3[i]!.createdBy, `/bin/sh -c #(nop) ${await tsbuildCopy(stage, rootfs3, line, '')}`, `from: ${line}`);
    }
  } finally {
    if (d) await d.stop();
    tmp.cleanup();
  }
});
