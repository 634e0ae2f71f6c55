/**
 * Runs filesystem work on a merged image rootfs (COPY, WORKDIR) in a private
 * mount namespace: the parent spawns this file under `unshare --mount`, so the
 * overlay mounts vanish with the process, even if it is killed. The request
 * comes as JSON on stdin; the reply is one JSON line on stdout.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsbuildError } from '../errors.js';
import { processTmpDir } from '../store/process-tmp.js';
import { overlayXattrOption } from '../snapshot/overlay-xattrs.js';
import { overlayVolatileOption } from '../snapshot/overlay-volatile.js';

export interface OverlayMount {
  /** Image layers, top-most first. */
  lowerDirs: string[];
  /** Writable layer; omitted for a read-only view. */
  upperDir?: string;
  workDir?: string;
  /** Copy snapshotter: a plain rootfs dir, bound instead of an overlay (read-only without upperDir). */
  plainDir?: string;
}

export interface WorkerRequest<Op> {
  /** Mounted at `<tmp>/rootfs` (the step's rootfs) and `<tmp>/source` (a --from image). */
  rootfs: OverlayMount;
  source?: OverlayMount;
  op: Op;
}

/** Mounts an overlay (or a read-only bind for a single lower with no upper, or a bind of a plain dir) at `target`. */
export function mountOverlay(m: OverlayMount, target: string, empty: string): void {
  mkdirSync(target, { recursive: true });
  let args: string[];
  if (m.plainDir) {
    args = m.upperDir ? ['--bind', m.plainDir, target] : ['--bind', '-o', 'ro', m.plainDir, target];
  } else if (!m.upperDir && m.lowerDirs.length <= 1) {
    const src = m.lowerDirs[0] ?? empty;
    args = ['--bind', '-o', 'ro', src, target];
  } else {
    const lowers = m.lowerDirs.length > 0 ? m.lowerDirs : [empty];
    const opts = [...overlayXattrOption(), `lowerdir=${lowers.join(':')}`];
    // volatile: the build syncs the layer itself (snapshot/overlay-volatile.ts).
    if (m.upperDir) opts.push(`upperdir=${m.upperDir}`, `workdir=${m.workDir}`, ...overlayVolatileOption());
    args = ['-t', 'overlay', 'overlay', '-o', opts.join(','), target];
  }
  const r = spawnSync('/usr/bin/mount', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new TsbuildError('MOUNT', `mount ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

export type OpHandler<Op, Result> = (op: Op, paths: { rootfs: string; source?: string }) => Promise<Result>;

/** Worker side: read the request, mount, run the handler, print the reply. */
export async function serveWorker<Op, Result>(handler: OpHandler<Op, Result>): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const req = JSON.parse(Buffer.concat(chunks).toString('utf8')) as WorkerRequest<Op>;
  // Under this worker's own /tmp/tsbuild-<owner> dir: if the worker is killed with its tsbuild,
  // the next tsbuild's store sweep removes it. (Kept short: deep ADD paths count against PATH_MAX.)
  const base = mkdtempSync(join(await processTmpDir('disk'), 'worker-'));
  const empty = join(base, 'empty');
  mkdirSync(empty);
  try {
    const rootfs = join(base, 'rootfs');
    mountOverlay(req.rootfs, rootfs, empty);
    let source: string | undefined;
    if (req.source) {
      source = join(base, 'source');
      mountOverlay(req.source, source, empty);
    }
    const result = await handler(req.op, source === undefined ? { rootfs } : { rootfs, source });
    process.stdout.write(JSON.stringify({ ok: true, result }) + '\n');
  } catch (e) {
    const err = e as Error & { code?: string };
    process.stdout.write(JSON.stringify({ ok: false, message: err.message, code: err instanceof TsbuildError ? err.code : 'WORKER' }) + '\n');
  } finally {
    // Lazy: a handle still open on a --from source (hash-only reads) made `umount` fail with EBUSY
    // and left the empty mount point dir behind in /tmp.
    spawnSync('/usr/bin/umount', ['-R', '-l', join(base, 'rootfs')]);
    if (req.source) spawnSync('/usr/bin/umount', ['-R', '-l', join(base, 'source')]);
    rmSync(base, { recursive: true, force: true });
  }
}

/**
 * How to start a worker in one bundled process image: set by the launcher (cli/launch.cts), which
 * starts as `node launch.cjs <flag>` and serves the request from its code-cached bundle, instead of
 * node loading the worker's module graph file by file (~40 ms more per COPY).
 */
let bundledWorker: { launcher: string; flag: string } | undefined;

export function useBundledWorker(launcher: string, flag: string): void {
  bundledWorker = { launcher, flag };
}

/** The node arguments that run `script` as a worker: the bundled launcher when there is one. */
export function workerArgs(script: string): string[] {
  return bundledWorker ? [bundledWorker.launcher, bundledWorker.flag] : [...loaderArgs(), script];
}

/** Parent side: runs `script` (a worker module) in a new private mount namespace. */
export async function callWorker<Op, Result>(script: string, req: WorkerRequest<Op>): Promise<Result> {
  // The worker dies with us (parent-death signal), and its mounts with its namespace.
  // Its environment names the layer dirs it writes, which is how a crash sweep finds it
  // (store.ts killProcessesUsing) without mistaking another build's copied mounts for it.
  const dirs = [req.rootfs.upperDir, req.rootfs.workDir, req.rootfs.plainDir].filter((d): d is string => d !== undefined);
  const env = { ...process.env, TSBUILD_WORKER_DIRS: dirs.map((d) => d + '/').join(':') };
  const child = spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', '/usr/bin/unshare', '--mount', '--propagation', 'private', '--', process.execPath, ...workerArgs(script)], { stdio: ['pipe', 'pipe', 'pipe'], env });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.end(JSON.stringify(req));
  let signal: NodeJS.Signals | null = null;
  const code = await new Promise<number>((res, rej) => {
    child.on('error', rej);
    child.on('close', (c, s) => {
      signal = s;
      res(c ?? 1);
    });
  });
  const text = Buffer.concat(out).toString('utf8').trim().split('\n').pop() ?? '';
  let reply: { ok: boolean; result?: Result; message?: string; code?: string };
  try {
    reply = JSON.parse(text) as typeof reply;
  } catch {
    const how = signal !== null ? `killed by ${signal}` : `exit ${code}`;
    throw new TsbuildError('WORKER', `rootfs worker failed (${how}): ${Buffer.concat(err).toString('utf8').trim() || text || 'no output'}`);
  }
  if (!reply.ok) throw new TsbuildError(reply.code ?? 'WORKER', reply.message ?? 'rootfs worker failed');
  return reply.result as Result;
}

/** The loader flags this process runs with (tsx under tests), for a child running .ts files. */
function loaderArgs(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === '--import' || a === '--require' || a === '--loader') && argv[i + 1] !== undefined) out.push(a, argv[++i]!);
    else if (/^--(import|require|loader)=/.test(a)) out.push(a);
  }
  return out;
}

/** A file named relative to this module's dir, .ts under tsx and .js when compiled. */
export function siblingScript(importMetaUrl: string, name: string): string {
  const here = fileURLToPath(importMetaUrl);
  return join(dirname(here), name + (here.endsWith('.ts') ? '.ts' : '.js'));
}
