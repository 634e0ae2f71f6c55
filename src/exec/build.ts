/**
 * The build engine: walks the plan stage by stage, step by step, like Docker's
 * classic builder — a cache lookup, then a commit of one image per step (with a
 * metadata/parent link), a layer for RUN/COPY/ADD/WORKDIR when they change
 * anything — and tags the target image at the very end.
 */
import { createHash } from 'node:crypto';
import { dirname, join, posix } from 'node:path';
import { clampMtimes } from './clamp.js';
import { lstat, mkdir, rm, utimes } from 'node:fs/promises';
import { DockerfileError, TsbuildError } from '../errors.js';
import type { ContainerConfig } from '../image/config.js';
import { chainIds, type ChainId, type DiffId, type ImageId } from '../image/digest.js';
import { serializeImageConfig, rfc3339Nano, type ImageConfig } from '../image/image.js';
import { parseReference } from '../image/reference.js';
import type { CopyInstruction, RunInstruction } from '../instructions/types.js';
import { CONTENT_HASH } from '../instructions/copy.js';
import { writeLayer } from '../layer/writer.js';
import { dropVolatileMarker, syncLayerData } from '../snapshot/overlay-volatile.js';
import { planBuild, type PlannerOptions } from '../plan/planner.js';
import type { Plan, PlannedStage, PlannedStep, Platform } from '../plan/types.js';
import type { StoredImage } from '../store/imagedb.js';
import type { ImageStore } from '../store/store.js';
import type { OverlayMount } from './rootfs-worker.js';
import { runOnRootfs } from './rootfs-ops.js';
import { prepareCopySnapshot, type SnapshotterKind } from '../snapshot/copy.js';
import { sameCacheConfig, stepHistory, stepImageConfig } from './step-image.js';
import { recordStepSource } from '../store/step-sources.js';
import { defaultParallelism, hasIndependentStages, runStageGraph } from './stage-graph.js';

export interface BuildRequest {
  dockerfile: string;
  dockerfileName: string;
  contextDir: string;
  tags: string[];
  buildArgs: Record<string, string | undefined>;
  target?: string;
  noCache: boolean;
  historyStyle: 'classic' | 'buildkit';
  /** `--label`: added to the final image as Docker does, by a LABEL step at the end. */
  labels: Record<string, string>;
  network: 'default' | 'host' | 'none';
  platform: Platform;
  /**
   * SOURCE_DATE_EPOCH: `created` times are this instant, new layer entries are
   * clamped to it and container IDs derive from the step, so builds reproduce.
   */
  sourceDateEpoch?: number;
  /** `--pull`: refresh every base image from its registry, even when the store has it. */
  pull?: boolean;
}

/** A step's writable rootfs: overlay layers, or (copy snapshotter) a plain dir bound instead. */
export type StepRootfs = Required<Omit<OverlayMount, 'plainDir'>> & Pick<OverlayMount, 'plainDir'>;

export interface RunStepRequest {
  rootfs: StepRootfs;
  instruction: RunInstruction;
  args: string[];
  env: string[];
  cwd: string;
  /** The USER string, resolved against the rootfs by the runner. */
  user: string;
  hostname: string;
  network: 'default' | 'host' | 'none';
  onOutput(chunk: Buffer, stream: 'stdout' | 'stderr'): void;
  /** `RUN --mount=…,from=<stage|image>`: that image's layers (top-most first), by the mount's index in instruction.mounts. */
  mountSources?: Record<number, string[]>;
  /** Aborts this RUN (a sibling stage failed, or the build was stopped). */
  signal?: AbortSignal;
}

export interface CopyStepRequest {
  rootfs: StepRootfs;
  /** The `--from` image's layers, when there is one. */
  source?: OverlayMount;
  instruction: CopyInstruction;
  contextDir: string;
  dockerfileName: string;
  workdir: string;
  /** The build hashes the sources itself at the same time: copy only (the hash returned is ''). */
  withoutHash?: boolean;
}

/** Which stage events belong to, when stages run concurrently (`name`: the AS name, else `stage-<index>`). */
export interface StageTag {
  index: number;
  name: string;
}

export interface BuildEvents {
  step(n: number, total: number, text: string): void;
  cached(): void;
  running(containerId: string): void;
  output(chunk: Buffer, stream: 'stdout' | 'stderr'): void;
  removing(containerId: string): void;
  committed(id: ImageId): void;
  warning(message: string): void;
  done(id: ImageId, tags: string[]): void;
  /** The build stopped with an error (the CLI prints it). */
  failed?(): void;
  /**
   * When independent stages run at the same time, each gets its own sink (step
   * numbers then count within the stage); without this, they share this one.
   * A chain of stages runs one at a time and uses this sink, numbered as Docker does.
   */
  stage?(tag: StageTag): BuildEvents;
  /** On a stage's own sink: that stage is built. */
  finished?(): void;
}

/** No output at all (library use). */
export const silentEvents: BuildEvents = {
  step: () => undefined,
  cached: () => undefined,
  running: () => undefined,
  output: () => undefined,
  removing: () => undefined,
  committed: () => undefined,
  warning: () => undefined,
  done: () => undefined,
};

export interface BuildDeps {
  store: ImageStore;
  /** Runs a RUN step on the rootfs; throws StepFailedError when the command fails. */
  runStep(req: RunStepRequest): Promise<void>;
  /** COPY/ADD into the rootfs; returns the classic content hash (`file:…`). */
  copyStep(req: CopyStepRequest): Promise<string>;
  /** The content hash alone, for the cache lookup before anything is copied. */
  copyHash(req: Omit<CopyStepRequest, 'rootfs'>): Promise<string>;
  now(): Date;
  randomId(): string;
  events: BuildEvents;
  /** Fetches a base image from its registry into the store (FROM of a missing image, `--pull`). */
  pull?(ref: string): Promise<StoredImage>;
  /**
   * Which snapshotter makes the steps' rootfs (snapshot/copy.ts chooseSnapshotter), and where the
   * copy snapshotter puts its copies; default overlay.
   */
  snapshotter?(): Promise<{ kind: SnapshotterKind; tmpDir: string }>;
  /** Aborts the build between steps (a RUN in progress is killed by its sandbox). */
  signal?: AbortSignal;
  /** How many independent stages may build at once; default the number of cores. */
  parallelism?: number;
  /**
   * `--cache-from`: asked on a local cache miss; a hit is brought into the store
   * (layer and config, same image ID) and used as if it had been cached here.
   */
  remoteCache?: { find(parent: StoredImage | null, probe: ContainerConfig): Promise<StoredImage | undefined> };
}

export class StepFailedError extends TsbuildError {
  constructor(
    readonly command: string,
    readonly exitCode: number,
    readonly stderrTail: string,
  ) {
    super('STEP_FAILED', `The command '${command}' returned a non-zero code: ${exitCode}`);
  }
}

export interface BuildResult {
  id: ImageId;
  plan: Plan;
}

/** Docker appends `--label`s as a LABEL instruction at the end of the Dockerfile. */
function withLabels(dockerfile: string, labels: Record<string, string>): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`);
  return pairs.length === 0 ? dockerfile : `${dockerfile.replace(/\n?$/, '\n')}LABEL ${pairs.join(' ')}\n`;
}

/** Applies a step's config changes to the running config. */
function applyChanges(config: ContainerConfig, step: PlannedStep): ContainerConfig {
  return { ...config, ...structuredClone(step.configChanges ?? {}) };
}

interface StageResult {
  image: StoredImage | null;
}

export async function build(req: BuildRequest, deps: BuildDeps): Promise<BuildResult> {
  for (const tag of req.tags) parseReference(tag);
  const source = withLabels(req.dockerfile, req.labels);
  const planOptions: PlannerOptions = {
    file: req.dockerfileName,
    buildArgs: req.buildArgs,
    historyStyle: req.historyStyle,
    platform: req.platform,
    ...(req.target !== undefined ? { target: req.target } : {}),
  };
  // Plan once to learn the base images, then again with their configs (ENV, ONBUILD, …).
  const draft = planBuild(source, planOptions);
  const bases = new Map<string, StoredImage>();
  for (const i of draft.buildOrder) {
    const stage = draft.stages[i]!;
    if (stage.base.kind !== 'image') continue;
    let image = req.pull ? undefined : await deps.store.resolve(stage.base.ref);
    let pullError = '';
    if (!image && deps.pull) {
      deps.events.output(Buffer.from(`Pulling ${stage.base.ref}\n`), 'stdout');
      try {
        image = await deps.pull(stage.base.ref);
      } catch (e) {
        pullError = `; pulling it failed: ${(e as Error).message}`;
        if (req.pull) image = await deps.store.resolve(stage.base.ref);
      }
    }
    if (!image) {
      throw new DockerfileError(`image "${stage.base.ref}" is not in the store at ${deps.store.root}${pullError}; add it with \`tsbuild pull\`, \`tsbuild load\` or \`tsbuild import\``, { start: { line: stage.line, column: 1 }, end: { line: stage.line, column: 1 } }, { file: req.dockerfileName, sourceLine: stage.fromText, code: 'NO_BASE_IMAGE' });
    }
    bases.set(stage.base.ref, image);
  }
  const plan = planBuild(source, { ...planOptions, resolveImage: (ref) => bases.get(ref)?.config.config });
  for (const w of plan.warnings) deps.events.warning(`${w.line !== undefined ? `${plan.file}:${w.line}: ` : ''}${w.message}`);

  const results = new Map<number, StageResult>();
  const children = new ChildIndex(deps.store);
  const nodes = new Map(plan.stages.map((s) => [s.index, s]));
  const limit = deps.parallelism ?? defaultParallelism();
  // A chain of stages prints like Docker's classic builder (Step N/M over the whole build);
  // stages that can overlap each get their own event sink, numbered within the stage.
  const concurrent = limit > 1 && hasIndependentStages(plan.buildOrder, nodes);
  const perStage = concurrent && deps.events.stage !== undefined;
  const total = plan.buildOrder.reduce((n, i) => n + 1 + plan.stages[i]!.steps.length, 0);
  const shared = { n: 0 };
  await runStageGraph(
    plan.buildOrder,
    nodes,
    concurrent ? limit : 1,
    async (index, signal) => {
      const stage = plan.stages[index]!;
      const events = perStage ? deps.events.stage!({ index, name: stage.name ?? `stage-${index}` }) : deps.events;
      const counter = perStage ? { n: 0 } : shared;
      const stageTotal = perStage ? 1 + stage.steps.length : total;
      results.set(index, await buildStage(req, { ...deps, events, signal }, plan, stage, bases, results, children, counter, stageTotal));
      if (perStage) events.finished?.();
    },
    deps.signal,
  );
  deps.signal?.throwIfAborted();
  const final = results.get(plan.target)?.image;
  if (!final) throw new TsbuildError('EMPTY_BUILD', 'the target stage produced no image (FROM scratch with no instructions)');
  for (const tag of req.tags) await deps.store.tag(tag, final.id);
  deps.events.done(final.id, req.tags);
  return { id: final.id, plan };
}

async function buildStage(req: BuildRequest, deps: BuildDeps, plan: Plan, stage: PlannedStage, bases: Map<string, StoredImage>, results: Map<number, StageResult>, children: ChildIndex, counter: { n: number }, total: number): Promise<StageResult> {
  const { store, events } = deps;
  events.step(++counter.n, total, stage.fromText);
  let image: StoredImage | null =
    stage.base.kind === 'scratch' ? null : stage.base.kind === 'stage' ? (results.get(stage.base.index)?.image ?? null) : (bases.get(stage.base.ref) ?? null);
  if (image) events.committed(image.id);
  let config = structuredClone(stage.initialConfig);
  let useCache = !req.noCache;

  for (const step of stage.steps) {
    deps.signal?.throwIfAborted();
    events.step(++counter.n, total, step.text);
    config = applyChanges(config, step);
    const kind = step.instruction.kind;
    const fromImage = kind === 'COPY' || kind === 'ADD' ? await copySourceImage(step.instruction as CopyInstruction, plan, results, store) : undefined;
    const mounted = kind === 'RUN' ? await runMountImages(step.instruction as RunInstruction, plan, results, deps) : undefined;
    let cacheCmd = step.cacheCmd;
    let createdBy = step.createdBy;
    // A COPY's content hash is its cache key. When no lookup can hit (no cache in use, or the
    // image has no children and no remote cache is asked), it is needed only for the history:
    // it is then computed while the copy runs, in parallel, instead of before it.
    let laterHash: Promise<string> | undefined;
    if (kind === 'COPY' || kind === 'ADD') {
      const hashReq = { ...(fromImage ? { source: { lowerDirs: await store.lowerDirs(fromImage) } } : {}), instruction: step.instruction as CopyInstruction, contextDir: req.contextDir, dockerfileName: req.dockerfileName, workdir: config.WorkingDir || '/' };
      const mayHit = useCache && (deps.remoteCache !== undefined || (await children.of(image?.id ?? null)).length > 0);
      if (mayHit) {
        const hash = await deps.copyHash(hashReq);
        cacheCmd = cacheCmd.map((c) => c.replace(CONTENT_HASH, hash));
        createdBy = createdBy.replace(CONTENT_HASH, hash);
      } else {
        useCache = false;
        laterHash = deps.copyHash(hashReq);
        // Awaited below (after the copy, or when it fails); never an unhandled rejection.
        laterHash.catch(() => undefined);
      }
    }
    // A RUN reading another image through a mount is keyed by that image too: a rebuilt
    // stage must not hit a cache entry made from its old content.
    const keyCmd = mounted && mounted.size > 0 ? [...cacheCmd, ...[...mounted].map(([i, m]) => `#(mount ${i} from=${m.from} ${m.image?.id ?? 'scratch'})`)] : cacheCmd;
    const probe: ContainerConfig = { ...config, Cmd: keyCmd };
    if (useCache) {
      let hit = await findCached(store, children, image, probe);
      if (!hit && deps.remoteCache) {
        hit = await deps.remoteCache.find(image, probe);
        if (hit) children.add(hit);
      }
      if (hit) {
        events.cached();
        await recordStepSource(store.root, hit.id, { file: req.dockerfileName, line: step.line, endLine: step.endLine, text: step.text });
        image = hit;
        events.committed(hit.id);
        continue;
      }
      // Like Docker: after the first miss, later steps are not looked up.
      useCache = false;
    }
    const created = rfc3339Nano(req.sourceDateEpoch !== undefined ? new Date(req.sourceDateEpoch * 1000) : deps.now());
    // Reproducible builds name the build container after the step, not at random.
    const newContainerId = () => (req.sourceDateEpoch !== undefined ? createHash('sha256').update(`${image?.id ?? ''}\n${JSON.stringify(keyCmd)}`).digest('hex') : deps.randomId());
    const mountSources = mounted && mounted.size > 0 ? Object.fromEntries(await Promise.all([...mounted].map(async ([i, m]) => [i, await store.lowerDirs(m.image)] as const))) : undefined;
    const base = { parent: image?.config ?? null, parentId: image?.id ?? null, config, cacheCmd: keyCmd, createdBy, ...stepHistory(step), created, platform: req.platform, ...(stage.author ? { author: stage.author } : {}) };
    let next: ImageConfig;
    if (step.emptyLayer === true) {
      const containerId = newContainerId();
      events.running(containerId);
      next = stepImageConfig({ ...base, containerId, viaContainerCreate: true });
      events.removing(containerId);
    } else {
      const containerId = kind === 'COPY' || kind === 'ADD' ? undefined : newContainerId();
      if (containerId) events.running(containerId);
      const linked = (kind === 'COPY' || kind === 'ADD') && (step.instruction as CopyInstruction).link ? { dest: posix.resolve(config.WorkingDir || '/', (step.instruction as CopyInstruction).dest) } : undefined;
      const chown = (step.instruction as CopyInstruction).chown;
      // A linked layer is made on an empty rootfs: no /etc/passwd to look names up in (BuildKit fails too).
      if (linked && chown !== undefined && !/^\d+(:\d+)?$/.test(chown)) {
        throw new DockerfileError(`${kind} --link --chown=${chown}: user and group names cannot be resolved in a linked layer (it is made apart from the image); use numeric ids`, { start: { line: step.line, column: 1 }, end: { line: step.line, column: 1 } }, { file: req.dockerfileName, sourceLine: step.text, code: 'LINK_CHOWN' });
      }
      const layer = await snapshotStep(deps, image, req.sourceDateEpoch, kind === 'RUN', linked, step.emptyLayer === false && kind !== 'COPY' && kind !== 'ADD', async (rootfs) => {
        if (kind === 'RUN') {
          const run = step.instruction as RunInstruction;
          await deps.runStep({
            rootfs,
            instruction: run,
            args: cacheCmd.slice(cacheCmdArgsOffset(cacheCmd)),
            env: [...(config.Env ?? []), ...(step.runArgs ?? [])],
            cwd: config.WorkingDir || '/',
            user: config.User,
            hostname: containerId!.slice(0, 12),
            network: run.network ?? req.network,
            onOutput: (chunk, stream) => events.output(chunk, stream),
            ...(mountSources ? { mountSources } : {}),
            ...(deps.signal ? { signal: deps.signal } : {}),
          });
        } else if (kind === 'WORKDIR') {
          await runOnRootfs(rootfs, { type: 'mkdir', path: config.WorkingDir, uid: 0, gid: 0 });
        } else {
          await deps.copyStep({ rootfs, ...(fromImage ? { source: { lowerDirs: await store.lowerDirs(fromImage) } } : {}), instruction: step.instruction as CopyInstruction, contextDir: req.contextDir, dockerfileName: req.dockerfileName, workdir: config.WorkingDir || '/', ...(laterHash ? { withoutHash: true } : {}) });
        }
      }).catch(async (e: unknown) => {
        // The hash's error first, as when it ran before the copy (a missing source fails both).
        await laterHash;
        throw e;
      });
      if (laterHash) {
        const hash = await laterHash;
        base.cacheCmd = base.cacheCmd.map((c) => c.replace(CONTENT_HASH, hash));
        base.createdBy = base.createdBy.replace(CONTENT_HASH, hash);
      }
      next = stepImageConfig({ ...base, ...(containerId ? { containerId } : {}), ...(layer ? { diffId: layer } : {}), viaContainerCreate: kind === 'WORKDIR' });
      if (containerId) events.removing(containerId);
    }
    const id = await store.putImage(serializeImageConfig(next), image?.id ?? null);
    await recordStepSource(store.root, id, { file: req.dockerfileName, line: step.line, endLine: step.endLine, text: step.text });
    image = await store.images.require(id);
    children.add(image);
    events.committed(id);
  }
  return { image };
}

/** `|N K=V…` prefixes the cache key of a RUN with build args; the command follows them. */
function cacheCmdArgsOffset(cmd: string[]): number {
  const m = /^\|(\d+)$/.exec(cmd[0] ?? '');
  return m ? 1 + Number(m[1]) : 0;
}

/** Docker's cache: a child of the current image whose container_config matches. */
/**
 * Parent → child images for the cache lookup: the store is read once per build
 * (and only if the cache is used), then kept current with what the build commits.
 */
class ChildIndex {
  private map: Map<ImageId | null, StoredImage[]> | undefined;
  /** One load, shared by stages looking up at the same time (none may see a half-read index). */
  private loading: Promise<void> | undefined;

  constructor(private readonly store: ImageStore) {}

  async of(parent: ImageId | null): Promise<StoredImage[]> {
    await (this.loading ??= this.load());
    return this.map!.get(parent) ?? [];
  }

  private async load(): Promise<void> {
    const map = new Map<ImageId | null, StoredImage[]>();
    for (const id of await this.store.images.ids()) {
      const image = await this.store.images.get(id);
      if (image && !map.get(image.parent)?.some((c) => c.id === image.id)) map.set(image.parent, [...(map.get(image.parent) ?? []), image]);
    }
    this.map = map;
  }

  add(image: StoredImage): void {
    if (!this.map) return; // not loaded yet: the first lookup reads the store, this image included
    this.map.set(image.parent, [...(this.map.get(image.parent) ?? []), image]);
  }
}

async function findCached(store: ImageStore, children: ChildIndex, parent: StoredImage | null, probe: ContainerConfig): Promise<StoredImage | undefined> {
  const candidates = (await children.of(parent?.id ?? null)).filter((c) => sameCacheConfig(c.config.container_config, probe));
  candidates.sort((a, b) => Date.parse(b.config.created) - Date.parse(a.config.created));
  for (const c of candidates) {
    try {
      await store.layerChain(c);
      return c;
    } catch {
      // A cached image whose layers are gone cannot be used.
    }
  }
  return undefined;
}

/** The images `RUN --mount=…,from=<stage|image>` reads, by the mount's index; a stage's result, else a stored (or pulled) image. */
async function runMountImages(instr: RunInstruction, plan: Plan, results: Map<number, StageResult>, deps: BuildDeps): Promise<Map<number, { from: string; image: StoredImage | null }>> {
  const out = new Map<number, { from: string; image: StoredImage | null }>();
  for (const [i, m] of instr.mounts.entries()) {
    const from = m.options['from'];
    if (from === undefined) continue;
    const index = stageIndexOf(plan, from);
    if (index !== undefined) {
      const result = results.get(index);
      if (!result) throw new TsbuildError('NO_STAGE_IMAGE', `RUN --mount from=${from}: that stage was not built`);
      out.set(i, { from, image: result.image });
      continue;
    }
    let image = await deps.store.resolve(from);
    if (!image && deps.pull) image = await deps.pull(from);
    if (!image) throw new TsbuildError('NO_IMAGE', `RUN --mount from=${from}: image not in the store; add it with \`tsbuild pull\`, \`tsbuild load\` or \`tsbuild import\``);
    out.set(i, { from, image });
  }
  return out;
}

/** A `--from`/`from=` naming a stage (its name, case-insensitive, or its index). */
function stageIndexOf(plan: Plan, ref: string): number | undefined {
  const byName = plan.stages.find((s) => s.name === ref.toLowerCase());
  return byName ? byName.index : /^\d+$/.test(ref) ? Number(ref) : undefined;
}

async function copySourceImage(instr: CopyInstruction, plan: Plan, results: Map<number, StageResult>, store: ImageStore): Promise<StoredImage | undefined> {
  if (instr.from === undefined) return undefined;
  const index = stageIndexOf(plan, instr.from);
  if (index !== undefined) {
    const image = results.get(index)?.image;
    if (!image) throw new TsbuildError('NO_STAGE_IMAGE', `stage ${instr.from} has no image to copy from`);
    return image;
  }
  const image = await store.resolve(instr.from);
  if (!image) throw new TsbuildError('NO_IMAGE', `COPY --from=${instr.from}: image not in the store; add it with \`tsbuild load\` or \`tsbuild import\``);
  return image;
}

/**
 * A writable snapshot on `parent`: a new overlay2 layer dir whose diff is the
 * upper dir. After `work`, the diff becomes a layer — or nothing, if it is empty.
 *
 * `linked` (COPY --link, as BuildKit does it): the work sees an empty rootfs, so
 * the layer holds only the copied files and their parent dirs made fresh (0755,
 * root), never a whiteout or anything of the parent; its diffID is the same on
 * any base. The dirs on the way to the destination get SOURCE_DATE_EPOCH (else 0)
 * as mtime, so the same sources give the same diffID at any time too. It is then
 * stacked on the parent's chain like any other layer.
 */
async function snapshotStep(deps: BuildDeps, parent: StoredImage | null, epoch: number | undefined, forRun: boolean, linked: { dest: string } | undefined, keepEmpty: boolean, work: (rootfs: StepRootfs) => Promise<void>): Promise<DiffId | undefined> {
  const { store } = deps;
  const snapshotter = deps.snapshotter ? await deps.snapshotter() : undefined;
  const top: ChainId | null = parent && parent.config.rootfs.diff_ids.length > 0 ? chainIds(parent.config.rootfs.diff_ids).pop()! : null;
  const lowerDirs = linked ? [] : await store.lowerDirs(parent);
  const layer = await store.putLayerIfChanged(top, async (diffDir) => {
    const workDir = join(dirname(diffDir), 'work');
    const madeWork = top === null;
    if (madeWork) await mkdir(workDir, { mode: 0o700 });
    try {
      if (snapshotter?.kind === 'copy') {
        // A plain copy of the image (with the init layer for a RUN); the tree diff writes the layer.
        const snap = await prepareCopySnapshot(lowerDirs, { tmpDir: snapshotter.tmpDir, init: forRun });
        try {
          await work({ lowerDirs, upperDir: diffDir, workDir, plainDir: snap.dir });
          await snap.diff(diffDir);
        } finally {
          await snap.dispose();
        }
      } else {
        await work({ lowerDirs, upperDir: diffDir, workDir });
      }
    } finally {
      // dockerd's base layers have no work dir; ours keeps the same shape.
      if (madeWork) await rm(workDir, { recursive: true, force: true });
      else await dropVolatileMarker(workDir);
    }
    if (linked) await fixDirTimes(diffDir, linked.dest, epoch ?? 0);
    if (epoch !== undefined) await clampMtimes(diffDir, epoch);
    // The step's overlay was volatile: the layer's data reaches the disk here, while it is hashed.
    const synced = syncLayerData(diffDir);
    synced.catch(() => undefined);
    const written = await writeLayer(diffDir);
    await synced;
    // keepEmpty (BuildKit style): a step that changed nothing still commits the empty layer.
    return written.empty && !keepEmpty ? null : { diffId: written.diffId, tarSplit: written.tarSplit, size: written.size };
  });
  return layer?.diffId;
}

/** The dirs of a linked layer from its root down to `dest` (those the copy made fresh) get mtime `t`. */
async function fixDirTimes(diffDir: string, dest: string, t: number): Promise<void> {
  let path = diffDir;
  for (const part of dest.split('/').filter((p) => p !== '')) {
    path = join(path, part);
    const st = await lstat(path).catch(() => undefined);
    if (!st?.isDirectory()) return;
    await utimes(path, t, t);
  }
}
