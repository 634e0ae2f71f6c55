/** The build with its real parts wired in: the store, the sandbox (namespaces, or runc/crun), the snapshotter, the rootfs worker. */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ModeStyle } from '../context/hash.js';
import { normalizeDest, resolveCopy, type CopyPlan } from '../context/sources.js';
import { copyFiles } from './copy-files.js';
import { loadBuildContext, type BuildContext } from '../context/tree.js';
import { HashCache, hashCacheFile } from '../context/hash-cache.js';
import { TsbuildError } from '../errors.js';
import { hostPlatform } from '../plan/platform.js';
import type { Platform } from '../plan/types.js';
import { NamespaceSandbox } from '../sandbox/namespace.js';
import type { Sandbox } from '../sandbox/types.js';
import { OciRuntimeSandbox, type OciRuntimeName } from '../sandbox/oci.js';
import { chooseSnapshotter, prepareCopySnapshot, type SnapshotterKind } from '../snapshot/copy.js';
import { overlayVerdictFile } from '../snapshot/overlay-verdict.js';
import type { OverlayMount } from './rootfs-worker.js';
import { prepareDirectCopy } from '../snapshot/direct-copy.js';
import { lstatLayered } from '../snapshot/overlay.js';
import { goBase, goClean, goJoin } from '../layer/bytes.js';
import type { StepRootfs } from './build.js';
import { ImageStore } from '../store/store.js';
import { build, silentEvents, type BuildDeps, type BuildEvents, type BuildRequest, type BuildResult } from './build.js';
import { runOnRootfs } from './rootfs-ops.js';
import { runStep, type SecretSource } from './run-step.js';
import { pullImage, pushImage } from '../registry/index.js';
import { needsStaging, stageSources, type StagedSources } from './copy-stage.js';
import type { CopyInstruction } from '../instructions/types.js';
import { newestMtime } from './clamp.js';
import type { Writable } from 'node:stream';
import type { ImageId } from '../image/digest.js';
import { exportBuildCache, remoteCacheFor, trackCommitted } from './build-cache.js';
import { writeOutput } from './build-output.js';
import type { CacheFromSpec, CacheToSpec, OutputSpec } from './build-specs.js';

export interface RunBuildOptions {
  root: string;
  contextDir: string;
  /** Path of the Dockerfile (default <context>/Dockerfile), or its text via `dockerfileText`. */
  dockerfile?: string;
  dockerfileText?: string;
  tags: string[];
  buildArgs?: Record<string, string | undefined>;
  target?: string;
  noCache?: boolean;
  network?: 'default' | 'host' | 'none';
  labels?: Record<string, string>;
  historyStyle?: 'classic' | 'buildkit';
  platform?: Platform;
  /** Tar header modes the client would send: 'perm' (current clients, default) or 'typed' (the docker 20.10 CLI). */
  modeStyle?: ModeStyle;
  /** SOURCE_DATE_EPOCH (seconds); see BuildRequest. */
  sourceDateEpoch?: number;
  /** Reproducible without a value: the epoch is the newest mtime in the context (0 if empty). */
  reproducible?: boolean;
  /** `--secret`: values for RUN --mount=type=secret, never stored. */
  secrets?: Record<string, SecretSource>;
  /** `--ssh`: agent sockets for RUN --mount=type=ssh. */
  ssh?: Record<string, string>;
  /** `--pull`: refresh base images from their registries. */
  pull?: boolean;
  /** `--push`: push every tag after the build. */
  push?: boolean;
  /** Registries reachable over plain HTTP besides loopback. */
  insecureRegistries?: string[];
  events?: BuildEvents;
  quiet?: boolean;
  /** Stops the build: the RUN's process tree is killed, the unfinished layer dir and temp dirs removed. */
  signal?: AbortSignal;
  /** `--runtime`: run RUN steps with this OCI runtime instead of the built-in namespace sandbox. */
  runtime?: OciRuntimeName;
  /** Default: TSBUILD_SNAPSHOTTER, else overlay when it can be mounted, else copy (snapshot/copy.ts). */
  snapshotter?: SnapshotterKind;
  /** How many independent stages build at once; default the number of cores. */
  parallelism?: number;
  /** `--cache-to`: push the build cache to these registry refs after the build. */
  cacheTo?: CacheToSpec[];
  /** `--cache-from`: registry caches asked on a local cache miss. */
  cacheFrom?: CacheFromSpec[];
  /** `--output`: write the image out (OCI layout or docker-save tar); `stdout` takes `dest=-`. */
  outputs?: OutputSpec[];
  stdout?: Writable;
  /**
   * COPY into a new destination writes the layer's upper dir without the overlay mount
   * (snapshot/direct-copy.ts); default true. false: always through the mount (tests compare both).
   */
  directCopy?: boolean;
}

/** Builds in progress in this process, for abortBuilds(). */
const active = new Set<AbortController>();

/** Aborts every build in progress (SIGINT/SIGTERM); returns how many there were. */
export function abortBuilds(reason: unknown): number {
  const n = active.size;
  for (const c of active) c.abort(reason);
  return n;
}


export async function runBuild(opts: RunBuildOptions): Promise<BuildResult> {
  const contextDir = resolve(opts.contextDir);
  const dockerfilePath = resolve(opts.dockerfile ?? join(contextDir, 'Dockerfile'));
  let dockerfile = opts.dockerfileText;
  if (dockerfile === undefined) {
    try {
      dockerfile = await readFile(dockerfilePath, 'utf8');
    } catch (e) {
      throw new TsbuildError('NO_DOCKERFILE', `cannot read Dockerfile ${dockerfilePath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
    }
  }
  const controller = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
  active.add(controller);
  try {
    return await buildWith(opts, contextDir, dockerfilePath, dockerfile, signal);
  } finally {
    active.delete(controller);
  }
}

async function buildWith(opts: RunBuildOptions, contextDir: string, dockerfilePath: string, dockerfile: string, signal: AbortSignal): Promise<BuildResult> {
  signal.throwIfAborted();
  const sourceDateEpoch = opts.sourceDateEpoch ?? (opts.reproducible ? await newestMtime(contextDir) : undefined);
  const store = await ImageStore.open(opts.root);
  // This build's own temp dir: removed when it ends (also on abort), swept after a crash.
  const tmpDir = await store.processScratchDir();
  try {
    return await buildIn(opts, store, tmpDir, contextDir, dockerfilePath, dockerfile, signal, sourceDateEpoch);
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}

async function buildIn(opts: RunBuildOptions, store: ImageStore, tmpDir: string, contextDir: string, dockerfilePath: string, dockerfile: string, signal: AbortSignal, sourceDateEpoch: number | undefined): Promise<BuildResult> {
  const cacheDir = join(store.root, 'tsbuild-cache');
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const runner: Sandbox = opts.runtime ? new OciRuntimeSandbox(opts.runtime, { tmpDir }) : new NamespaceSandbox({ tmpDir });
  // A RUN stops with the build, or alone when a sibling stage failed (its own signal).
  const sandbox: Sandbox = { run: (spec, own) => runner.run(spec, own ? AbortSignal.any([signal, own]) : signal) };
  let chosen: Promise<{ kind: SnapshotterKind; tmpDir: string }> | undefined;
  const snapshotter = () => (chosen ??= chooseSnapshotter(tmpDir, opts.snapshotter, process.env, overlayVerdictFile(store.root)).then((kind) => ({ kind, tmpDir })));
  // A COPY --from image of several layers is an overlay too: with the copy snapshotter, a plain copy.
  const withSource = async <T>(source: OverlayMount | undefined, fn: (source: OverlayMount | undefined) => Promise<T>): Promise<T> => {
    if (!source || source.lowerDirs.length <= 1 || (await snapshotter()).kind !== 'copy') return fn(source);
    const copy = await prepareCopySnapshot(source.lowerDirs, { tmpDir });
    try {
      return await fn({ lowerDirs: [], plainDir: copy.dir });
    } finally {
      await copy.dispose();
    }
  };
  const modeStyle = opts.modeStyle ?? 'perm';
  let context: Promise<BuildContext> | undefined;
  // Context files' sums from earlier builds (context/hash-cache.ts); the COPY worker reads the same file.
  const hashCachePath = hashCacheFile(store.root, contextDir, modeStyle);
  let hashCache: HashCache | undefined;
  const loadContext = () => (context ??= HashCache.load(hashCachePath).then((cache) => loadBuildContext({ contextDir, dockerfile: dockerfilePath, modeStyle, hashCache: (hashCache = cache), lazyCapabilities: true })));
  // Heredoc and URL sources are staged once per instruction, for the hash and the copy.
  const staged = new Map<string, Promise<StagedSources>>();
  const stage = (instr: CopyInstruction) => {
    const key = JSON.stringify(instr);
    let s = staged.get(key);
    // Git over ssh uses the agent of `--ssh default`; other sources need no agent.
    const sshAuthSock = opts.ssh?.['default'];
    if (!s) staged.set(key, (s = stageSources(instr, tmpDir, { ...(sourceDateEpoch !== undefined ? { epoch: sourceDateEpoch } : {}), ...(sshAuthSock !== undefined ? { sshAuthSock } : {}) })));
    return s;
  };
  const request: BuildRequest = {
    dockerfile,
    dockerfileName: opts.dockerfile ?? 'Dockerfile',
    contextDir,
    tags: opts.tags,
    buildArgs: opts.buildArgs ?? {},
    ...(opts.target !== undefined ? { target: opts.target } : {}),
    noCache: opts.noCache ?? false,
    historyStyle: opts.historyStyle ?? 'classic',
    labels: opts.labels ?? {},
    network: opts.network ?? 'default',
    platform: opts.platform ?? hostPlatform(),
    ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
    ...(opts.pull ? { pull: true } : {}),
  };
  const platform = opts.platform ?? hostPlatform();
  const registry = { platform, retry: { attempts: 2, baseDelayMs: 200 }, ...(opts.insecureRegistries ? { insecureRegistries: opts.insecureRegistries } : {}) };
  const committed: ImageId[] = [];
  const warn = (m: string) => (opts.events ?? silentEvents).warning(m);
  const info = (m: string) => (opts.events ?? silentEvents).output(Buffer.from(`${m}\n`), 'stderr');
  const deps: BuildDeps = {
    store,
    runStep: async (req) =>
      runStep(req, { sandbox, tmpDir, cacheDir, contextDir, overlayMounts: !opts.runtime && (await snapshotter()).kind === 'overlay', ...(opts.secrets ? { secrets: opts.secrets } : {}), ...(opts.ssh ? { ssh: opts.ssh } : {}) }),
    copyStep: async (req) => {
      const special = needsStaging(req.instruction) ? await stage(req.instruction) : undefined;
      const op = { type: 'copy' as const, instruction: special?.instruction ?? req.instruction, contextDir: special?.contextDir ?? contextDir, dockerfile: dockerfilePath, workdir: req.workdir, modeStyle, hashOnly: false, ...(req.withoutHash ? { withoutHash: true } : special ? {} : { hashCache: hashCachePath }) };
      const mayDirect = opts.directCopy !== false && mayCopyDirectly(req.rootfs, req.instruction);
      if (!special && !req.source) {
        // Sources in the context, walked (and hashed) here once: the plan tells exactly what the
        // copy creates; a small direct copy runs here, anything else in a worker given the context.
        const tree = await loadContext();
        const plan = await resolveCopy(req.instruction, { tree, workdir: req.workdir, ...(req.withoutHash ? { hashes: false } : {}) });
        const direct = mayDirect && (await prepareDirectCopy(req.rootfs.lowerDirs, req.rootfs.upperDir, await copyTargets(req.rootfs.lowerDirs, tree, plan)));
        await tree.readCapabilities();
        if (direct && fitsInProcess(tree, plan)) {
          await copyFiles({ rootfs: req.rootfs.upperDir, plan });
        } else {
          const rootfs = direct ? { lowerDirs: [], upperDir: req.rootfs.upperDir, plainDir: req.rootfs.upperDir } : req.rootfs;
          await runOnRootfs(rootfs, { type: 'copy', instruction: req.instruction, contextDir, dockerfile: dockerfilePath, workdir: req.workdir, modeStyle, hashOnly: false, withoutHash: true, context: tree.toTransfer() });
        }
        return plan.hash;
      }
      const direct = mayDirect && (await prepareDirectCopy(req.rootfs.lowerDirs, req.rootfs.upperDir, [cleanDest(req.workdir, req.instruction)]));
      const rootfs = direct ? { lowerDirs: [], upperDir: req.rootfs.upperDir, plainDir: req.rootfs.upperDir } : req.rootfs;
      return withSource(req.source, async (source) => (await runOnRootfs(rootfs, op, source)).hash);
    },
    copyHash: async (req) => {
      if (needsStaging(req.instruction)) {
        const special = await stage(req.instruction);
        const tree = await loadBuildContext({ contextDir: special.contextDir, ignore: null, modeStyle });
        return (await resolveCopy(special.instruction, { tree, workdir: req.workdir })).hash;
      }
      // Context sources hash in-process; a --from image needs its rootfs mounted.
      if (!req.source) {
        const { hash } = await resolveCopy(req.instruction, { tree: await loadContext(), workdir: req.workdir });
        await hashCache?.save();
        return hash;
      }
      const op = { type: 'copy' as const, instruction: req.instruction, contextDir, dockerfile: dockerfilePath, workdir: req.workdir, modeStyle, hashOnly: true };
      return withSource(req.source, async (source) => (await runOnRootfs({ lowerDirs: [] }, op, source)).hash);
    },
    pull: (ref) => pullImage(store, ref, registry),
  now: () => new Date(),
    randomId: () => randomBytes(32).toString('hex'),
    events: opts.cacheTo?.length ? trackCommitted(opts.events ?? silentEvents, committed) : (opts.events ?? silentEvents),
    ...(opts.cacheFrom?.length && !opts.noCache ? { remoteCache: remoteCacheFor(store, opts.cacheFrom, { ...registry, tmpDir, warn, info }) } : {}),
    signal,
    snapshotter,
    ...(opts.parallelism !== undefined ? { parallelism: opts.parallelism } : {}),
  };
  try {
    const result = await build(request, deps);
    if (opts.cacheTo?.length) await exportBuildCache(store, result, committed, opts.cacheTo, { ...registry, warn, info });
    for (const o of opts.outputs ?? []) await writeOutput(store, result.id, opts.tags, o, opts.stdout ?? process.stdout);
    if (opts.push) for (const tag of opts.tags) await pushImage(store, tag, registry);
    return result;
  } finally {
    for (const s of staged.values()) await (await s.catch(() => undefined))?.dispose();
  }
}

/**
 * Whether a COPY may write into its layer's upper dir without the overlay mount
 * (snapshot/direct-copy.ts decides): not with the copy snapshotter (its rootfs is a plain copy
 * already) nor with `--chown` by name (looked up in the image's files).
 */
function mayCopyDirectly(rootfs: StepRootfs, instr: CopyInstruction): boolean {
  if (rootfs.plainDir !== undefined) return false;
  return instr.chown === undefined || instr.chown === '' || /^\d+(:\d+)?$/.test(instr.chown);
}

/** The destination, clean and absolute, without its trailing slash. */
function cleanDest(workdir: string, instr: CopyInstruction): string {
  return goClean(normalizeDest(workdir, instr.dest));
}

/**
 * The paths a copy from the context creates at the top: a file's path (in the destination when
 * that is a directory or written with `/`), a directory's children when the destination is an
 * existing directory, else the destination itself (also for --parents and ADD archives).
 */
async function copyTargets(lowerDirs: readonly string[], tree: BuildContext, plan: CopyPlan): Promise<string[]> {
  const dest = goClean(plan.dest);
  if (plan.decompress || plan.operations.some((op) => op.parentDirs !== undefined)) return [dest];
  const destIsDir = (await lstatLayered(lowerDirs, dest))?.stat.isDirectory() === true;
  const out: string[] = [];
  for (const op of plan.operations) {
    if (op.source.type === 'dir') {
      if (!destIsDir) out.push(dest);
      else for (const name of await tree.readdir(op.source.resolved)) out.push(goJoin(dest, name));
    } else {
      out.push(destIsDir || plan.destAsWritten.endsWith('/') ? goJoin(dest, goBase(op.source.path)) : dest);
    }
  }
  return out;
}

/**
 * A direct copy this small runs in the build's own process: a worker process costs ≈ 100 ms to
 * start; a large one still gets one, where it copies while this process hashes the sources.
 */
const IN_PROCESS_MAX_ENTRIES = 2000;
const IN_PROCESS_MAX_BYTES = 64 << 20;

function fitsInProcess(tree: BuildContext, plan: CopyPlan): boolean {
  let entries = 0;
  let bytes = 0;
  for (const op of plan.operations) {
    const size = tree.sizeOf(op.source.resolved, IN_PROCESS_MAX_ENTRIES - entries);
    entries += size.entries;
    bytes += size.bytes;
    if (entries > IN_PROCESS_MAX_ENTRIES || bytes > IN_PROCESS_MAX_BYTES) return false;
  }
  return true;
}
