/**
 * The operations the rootfs worker performs on a mounted image rootfs. Run as a
 * script it serves one request (see rootfs-worker.ts); imported, it offers the
 * typed calls the build uses.
 */
import { lstat, mkdir, chown } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsbuildError } from '../errors.js';
import { callWorker, serveWorker, siblingScript, type OverlayMount } from './rootfs-worker.js';
import type { CopyInstruction } from '../instructions/types.js';
import type { ModeStyle } from '../context/hash.js';
import { BuildContext, DirTree, loadBuildContext, type ContextTransfer } from '../context/tree.js';
import { resolveCopy } from '../context/sources.js';
import { HashCache } from '../context/hash-cache.js';
import { copyFiles } from './copy-files.js';

export interface MkdirOp {
  type: 'mkdir';
  /** Absolute path in the image. */
  path: string;
  uid: number;
  gid: number;
}

export interface ReadFilesOp {
  type: 'read';
  /** Absolute paths in the image; a missing file reads as null. */
  paths: string[];
}

/** COPY/ADD: resolve the sources (context or the mounted --from image), copy into the rootfs. */
export interface CopyOp {
  type: 'copy';
  instruction: CopyInstruction;
  contextDir: string;
  dockerfile: string;
  workdir: string;
  modeStyle: ModeStyle;
  /** Only compute the content hash (for the cache lookup); copy nothing. */
  hashOnly: boolean;
  /** The context's hash cache file (context/hash-cache.ts): the build hashed the sources already. */
  hashCache?: string;
  /** Copy without hashing (the build hashes the sources at the same time); the hash returned is ''. */
  withoutHash?: boolean;
  /** The build's context, walked already (BuildContext.toTransfer): copied from without a walk, never hashed. */
  context?: ContextTransfer;
}

export type RootfsOp = MkdirOp | ReadFilesOp | CopyOp;

async function copyIntoRootfs(paths: { rootfs: string; source?: string }, op: CopyOp): Promise<{ hash: string }> {
  const hashCache = op.hashCache !== undefined ? await HashCache.load(op.hashCache) : undefined;
  const tree = paths.source !== undefined ? new DirTree(paths.source) : op.context !== undefined ? BuildContext.fromTransfer(op.context) : await loadBuildContext({ contextDir: op.contextDir, dockerfile: op.dockerfile, modeStyle: op.modeStyle, ...(hashCache ? { hashCache } : {}) });
  const plan = await resolveCopy(op.instruction, { tree, workdir: op.workdir, ...(op.withoutHash || op.context !== undefined ? { hashes: false } : {}) });
  if (!op.hashOnly) await copyFiles({ rootfs: paths.rootfs, plan });
  return { hash: plan.hash };
}

/** mkdir -p inside the rootfs, like Docker creating a WORKDIR: new components 0755, owned by uid:gid. */
async function mkdirInRootfs(rootfs: string, op: MkdirOp): Promise<{ created: string[] }> {
  const created: string[] = [];
  let current = rootfs;
  for (const part of posix.normalize(op.path).split('/').filter((p) => p !== '')) {
    current = join(current, part);
    const st = await lstat(current).catch(() => undefined);
    if (st?.isSymbolicLink()) throw new TsbuildError('WORKDIR', `cannot create ${op.path}: ${part} is a symlink`);
    if (st && !st.isDirectory()) throw new TsbuildError('WORKDIR', `cannot create ${op.path}: ${part} is not a directory`);
    if (!st) {
      await mkdir(current, { mode: 0o755 });
      await chown(current, op.uid, op.gid);
      created.push(current.slice(rootfs.length));
    }
  }
  return { created };
}

async function readFiles(rootfs: string, op: ReadFilesOp): Promise<(string | null)[]> {
  const { readFile } = await import('node:fs/promises');
  return Promise.all(op.paths.map((p) => readFile(join(rootfs, posix.normalize('/' + p)), 'utf8').catch(() => null)));
}

export function runOnRootfs(rootfs: OverlayMount, op: MkdirOp): Promise<{ created: string[] }>;
export function runOnRootfs(rootfs: OverlayMount, op: ReadFilesOp): Promise<(string | null)[]>;
export function runOnRootfs(rootfs: OverlayMount, op: CopyOp, source?: OverlayMount): Promise<{ hash: string }>;
export function runOnRootfs(rootfs: OverlayMount, op: RootfsOp, source?: OverlayMount): Promise<unknown> {
  // Via ../exec/: the CLI bundle (dist/cli/tsbuild.mjs) holds this code too, one dir over.
  return callWorker(siblingScript(import.meta.url, '../exec/rootfs-ops'), { rootfs, op, ...(source ? { source } : {}) });
}

/** Worker side: serves one request from stdin (run as a script, or by the bundled launcher). */
export function serveRootfsOps(): Promise<void> {
  return serveWorker<RootfsOp, unknown>(async (op, paths) => {
    switch (op.type) {
      case 'mkdir':
        return mkdirInRootfs(paths.rootfs, op);
      case 'read':
        return readFiles(paths.rootfs, op);
      case 'copy':
        return copyIntoRootfs(paths, op);
    }
  });
}

// No top-level await: the CLI bundle is CommonJS (cli/launch.cts loads it with a code cache).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  serveRootfsOps().catch((e: unknown) => {
    process.stderr.write(`rootfs worker: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
