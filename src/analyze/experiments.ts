/**
 * The seeds' experiments (examples/*): each builds a pair of images that differ
 * in one habit, measures them with `analyze`, and states the lesson with the
 * measured numbers. Used by `npm run experiments` (scripts/experiments.ts) and
 * the tests. Needs root (RUN uses overlay mounts and namespaces) and
 * busybox-static; build-deps also needs debootstrap and the Debian mirror.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { humanSize } from '../cli/dockerfmt.js';
import { runBuild } from '../exec/run-build.js';
import { importRootfs } from '../store/import.js';
import type { ImageStore } from '../store/store.js';
import { analyzeImage, type AnalysisJson } from './analyze.js';
import { explainImage } from './explain.js';

const pexecLazy = () => promisify(execFile);
let pexecFn: ReturnType<typeof pexecLazy> | undefined;
/** promisify(execFile), made at first use: node:child_process then loads, not at every start. */
const pexec = ((...args: unknown[]) => (pexecFn ??= pexecLazy())(...(args as [string]))) as ReturnType<typeof pexecLazy>;

export const EXAMPLES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');

export interface Variant {
  name: string;
  tag: string;
  analysis: AnalysisJson;
}

export interface ExperimentResult {
  example: string;
  variants: Variant[];
  /** The lesson, with measured numbers. */
  lesson: string;
  /** Checks of the lesson; all must hold. */
  checks: { what: string; ok: boolean }[];
  skipped?: string;
}

export interface ExperimentContext {
  store: ImageStore;
  root: string;
  /** Scratch space for contexts and rootfs tars. */
  work: string;
  /** Where the debootstrap tar is cached between runs. */
  cacheDir: string;
  log(line: string): void;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Why experiments cannot build here, or undefined. */
export function unavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'experiments need Linux';
  if (process.getuid?.() !== 0) return 'experiments need root (RUN steps use overlay mounts and namespaces)';
  return undefined;
}

export async function ensureBusybox(ctx: ExperimentContext): Promise<void> {
  if (await ctx.store.resolve('busybox:local')) return;
  if (!(await exists('/bin/busybox'))) throw new Error('needs busybox-static (apt-get install busybox-static)');
  const tar = join(ctx.work, 'busybox.tar');
  await pexec('bash', [join(EXAMPLES_DIR, 'busybox-rootfs.sh'), tar]);
  await importRootfs(ctx.store, Readable.from([await readFile(tar)]), { reference: 'busybox:local', platform: { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch } });
  await rm(tar, { force: true });
}

async function build(ctx: ExperimentContext, example: string, variant: string, contextDir = join(EXAMPLES_DIR, example), dockerfile = `Dockerfile.${variant}`): Promise<Variant> {
  const tag = `${example}:${variant}`;
  const t0 = Date.now();
  await runBuild({ root: ctx.root, contextDir, dockerfile: join(contextDir, dockerfile), tags: [tag] });
  const { json } = await analyzeImage(ctx.store, tag, { dockerfile: { path: join(contextDir, dockerfile) } });
  ctx.log(`  built ${tag} in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${humanSize(json.image.size)}`);
  return { name: variant, tag, analysis: json };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export async function testImage(ctx: ExperimentContext): Promise<ExperimentResult> {
  const v = await build(ctx, 'test-image', 'test-image', join(EXAMPLES_DIR, 'test-image'), 'Dockerfile');
  const a = v.analysis;
  const explained = await explainImage(ctx.store, v.tag);
  let reproduced = 0;
  for (const c of explained.checks.filter((x) => x.what === 'chainId' || x.what === 'imageId')) {
    const { stdout } = await pexec('bash', ['-c', c.command]);
    if (stdout.trim().split(/\s+/)[0] === c.expected) reproduced++;
  }
  const empty = a.steps.filter((s) => !s.inherited && s.emptyLayer).length;
  const built = a.steps.filter((s) => !s.inherited).length;
  const hello = a.inefficiencies.find((i) => i.path === '/hello.txt');
  return {
    example: 'test-image',
    variants: [v],
    lesson: `${built} steps made ${a.layers.length - 1} layers on the base (${empty} steps, LABEL and CMD, are empty_layer entries); the 6-byte /hello.txt deleted by the next RUN still ships (${hello?.cumulativeSize ?? 0} wasted bytes); explain's commands reproduce the image ID and ${reproduced - 1} of ${a.layers.length} chainIDs.`,
    checks: [
      { what: 'LABEL and CMD are empty layers', ok: empty === 2 },
      { what: '/hello.txt is wasted', ok: hello?.cumulativeSize === 6 },
      { what: 'explain reproduces every chainID', ok: reproduced === a.layers.length + 1 },
    ],
  };
}

export async function runChaining(ctx: ExperimentContext): Promise<ExperimentResult> {
  const un = await build(ctx, 'run-chaining', 'unchained');
  const ch = await build(ctx, 'run-chaining', 'chained');
  const removed = un.analysis.image.size - ch.analysis.image.size;
  const waste = un.analysis.wastedBytes;
  const merge = un.analysis.advice.find((x) => x.kind === 'merge-run');
  const lines = merge ? `${merge.from.line}→${merge.to.line}` : 'none';
  return {
    example: 'run-chaining',
    variants: [un, ch],
    lesson: `chaining removes ${humanSize(removed)} (${removed} bytes); analyze finds ${waste} wasted bytes in the unchained image (${pct(waste / removed)} of it) and ${ch.analysis.wastedBytes} in the chained one, and advises merging lines ${lines}.`,
    checks: [
      { what: 'waste within 1% of the bytes removed', ok: Math.abs(waste - removed) <= 0.01 * removed },
      { what: 'no waste when chained', ok: ch.analysis.wastedBytes === 0 },
      { what: 'advice names lines 4 and 6', ok: merge?.from.line === 4 && merge?.to.line === 6 },
    ],
  };
}

export async function multistage(ctx: ExperimentContext): Promise<ExperimentResult> {
  const single = await build(ctx, 'multistage', 'single');
  const multi = await build(ctx, 'multistage', 'multi');
  const base = (await ctx.store.imageSize(await ctx.store.require('busybox:local'))) || 1;
  const saved = single.analysis.image.size - multi.analysis.image.size;
  const added = multi.analysis.image.size - base;
  return {
    example: 'multistage',
    variants: [single, multi],
    lesson: `one stage ships the toolchain and sources: ${humanSize(single.analysis.image.size)}; COPY --from the build stage ships the base plus ${added} bytes: ${humanSize(multi.analysis.image.size)} (${humanSize(saved)} less). analyze finds no waste in either: a deleted file is waste, a kept toolchain is not.`,
    checks: [
      { what: 'the final image is the base plus the 1 KiB artifact', ok: added === 1024 },
      { what: 'the single-stage image is ≥ 8 MiB bigger', ok: saved >= 8 * 1024 * 1024 },
    ],
  };
}

export async function chmodCopyup(ctx: ExperimentContext): Promise<ExperimentResult> {
  const dir = join(ctx.work, 'chmod-copyup');
  await cp(join(EXAMPLES_DIR, 'chmod-copyup'), dir, { recursive: true });
  await pexec('bash', [join(dir, 'make-payload.sh'), dir]);
  const chmod = await build(ctx, 'chmod-copyup', 'chmod', dir);
  const flags = await build(ctx, 'chmod-copyup', 'copy-flags', dir);
  const up = chmod.analysis.advice.find((x) => x.kind === 'copy-up');
  const extra = chmod.analysis.image.size - flags.analysis.image.size;
  return {
    example: 'chmod-copyup',
    variants: [chmod, flags],
    lesson: `RUN chmod/chown after COPY stores the 4 MiB file twice: ${humanSize(chmod.analysis.image.size)} vs ${humanSize(flags.analysis.image.size)} with COPY --chmod/--chown (${extra} bytes more); analyze flags the copy-up of ${up?.bytesSaved ?? 0} bytes and suggests \`COPY ${up?.flags ?? '?'}\` on line ${up?.from.line ?? '?'}.`,
    checks: [
      { what: 'the copy-up costs the file size', ok: extra === 4 * 1024 * 1024 },
      { what: 'analyze suggests --chmod=755 --chown=1000:1000', ok: up?.flags === '--chmod=755 --chown=1000:1000' && up.bytesSaved === 4 * 1024 * 1024 },
    ],
  };
}

/** A debootstrap minbase rootfs tar, cached; undefined with the reason when it cannot be made. */
async function debianTar(ctx: ExperimentContext): Promise<{ tar?: string; reason?: string }> {
  const cached = join(ctx.cacheDir, 'debian-bookworm-minbase.tar');
  if (await exists(cached)) return { tar: cached };
  try {
    await pexec('sh', ['-c', 'command -v debootstrap']);
  } catch {
    return { reason: 'debootstrap is not installed (apt-get install debootstrap)' };
  }
  await mkdir(ctx.cacheDir, { recursive: true });
  ctx.log('  debootstrap --variant=minbase bookworm (about 30 s, from the Debian mirror)…');
  const tmp = `${cached}.tmp-${process.pid}`;
  try {
    await pexec('bash', [join(EXAMPLES_DIR, 'build-deps', 'debian-rootfs.sh'), tmp], { maxBuffer: 1 << 24 });
  } catch (e) {
    await rm(tmp, { force: true });
    const err = e as { code?: number; stderr?: string };
    return { reason: err.code === 3 ? (err.stderr ?? '').trim() || 'the Debian mirror is unreachable' : `debootstrap failed: ${(err.stderr ?? String(e)).trim().split('\n').slice(-3).join(' / ')}` };
  }
  await rename(tmp, cached);
  return { tar: cached };
}

export async function buildDeps(ctx: ExperimentContext): Promise<ExperimentResult> {
  if (!(await ctx.store.resolve('debian:bookworm-minbase'))) {
    const { tar, reason } = await debianTar(ctx);
    if (!tar) return { example: 'build-deps', variants: [], lesson: '', checks: [], skipped: reason ?? 'no Debian base' };
    await importRootfs(ctx.store, Readable.from([await readFile(tar)]), { reference: 'debian:bookworm-minbase', platform: { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch } });
  }
  let several: Variant;
  let one: Variant;
  try {
    several = await build(ctx, 'build-deps', 'several');
    one = await build(ctx, 'build-deps', 'one');
  } catch (e) {
    const msg = String((e as Error).message ?? e);
    if (/apt-get (update|install)|Could not resolve|Temporary failure|Failed to fetch/i.test(msg)) return { example: 'build-deps', variants: [], lesson: '', checks: [], skipped: `apt-get could not reach the Debian mirror: ${msg.split('\n')[0]}` };
    throw e;
  }
  const saved = several.analysis.image.size - one.analysis.image.size;
  const top = several.analysis.advice.filter((x) => x.kind === 'merge-run').slice(0, 2);
  return {
    example: 'build-deps',
    variants: [several, one],
    lesson: `installing tcc, compiling and purging in separate RUNs ships ${humanSize(several.analysis.image.size)}; in one RUN ${humanSize(one.analysis.image.size)} (${humanSize(saved)} less, ${pct(saved / several.analysis.image.size)}). analyze: ${humanSize(several.analysis.wastedBytes)} wasted, efficiency ${pct(several.analysis.efficiency)} vs ${pct(one.analysis.efficiency)}; top advice: ${top.map((x) => `merge lines ${x.from.line}→${x.to.line} (${humanSize(x.bytesSaved)})`).join(', ')}.`,
    checks: [
      { what: 'one RUN is smaller', ok: saved > 0 },
      { what: 'the reclaimable bytes account for the difference (within 5%)', ok: Math.abs(several.analysis.reclaimableBytes - saved) <= 0.05 * saved },
    ],
  };
}

export const EXPERIMENTS: Record<string, (ctx: ExperimentContext) => Promise<ExperimentResult>> = {
  'test-image': testImage,
  'run-chaining': runChaining,
  'build-deps': buildDeps,
  multistage,
  'chmod-copyup': chmodCopyup,
};

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'tsbuild');
}

export async function scratchDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'tsbuild-experiments-'));
}
