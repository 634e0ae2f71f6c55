/**
 * The build engine: walks the plan stage by stage, step by step, like Docker's
 * classic builder — a cache lookup, then a commit of one image per step (with a
 * metadata/parent link), a layer for RUN/COPY/ADD/WORKDIR when they change
 * anything — and tags the target image at the very end.
 */
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { clampMtimes } from './clamp.js';
import { mkdir, rm } from 'node:fs/promises';
import { DockerfileError, TsbuildError } from '../errors.js';
import type { ContainerConfig } from '../image/config.js';
import { chainIds, type ChainId, type DiffId, type ImageId } from '../image/digest.js';
import { serializeImageConfig, rfc3339Nano, type ImageConfig } from '../image/image.js';
import { parseReference } from '../image/reference.js';
import type { CopyInstruction, RunInstruction } from '../instructions/types.js';
import { CONTENT_HASH } from '../instructions/copy.js';
import { writeLayer } from '../layer/writer.js';
import { planBuild, type PlannerOptions } from '../plan/planner.js';
import type { Plan, PlannedStage, PlannedStep, Platform } from '../plan/types.js';
import type { StoredImage } from '../store/imagedb.js';
import type { ImageStore } from '../store/store.js';
import type { OverlayMount } from './rootfs-worker.js';
import { runOnRootfs } from './rootfs-ops.js';
import { prepareCopySnapshot, type SnapshotterKind } from '../snapshot/copy.js';
import { sameCacheConfig, stepImageConfig } from './step-image.js';
import { recordStepSource } from '../store/step-sources.js';

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
}

export interface CopyStepRequest {
  rootfs: StepRootfs;
  /** The `--from` image's layers, when there is one. */
  source?: OverlayMount;
  instruction: CopyInstruction;
  contextDir: string;
  dockerfileName: string;
  workdir: string;
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

  const total = plan.buildOrder.reduce((n, i) => n + 1 + plan.stages[i]!.steps.length, 0);
  const counter = { n: 0 };
  const results = new Map<number, StageResult>();
  const children = new ChildIndex(deps.store);
  for (const index of plan.buildOrder) {
    const stage = plan.stages[index]!;
    results.set(index, await buildStage(req, deps, plan, stage, bases, results, children, counter, total));
  }
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
    let cacheCmd = step.cacheCmd;
    let createdBy = step.createdBy;
    if (kind === 'COPY' || kind === 'ADD') {
      const hash = await deps.copyHash({ ...(fromImage ? { source: { lowerDirs: await store.lowerDirs(fromImage) } } : {}), instruction: step.instruction as CopyInstruction, contextDir: req.contextDir, dockerfileName: req.dockerfileName, workdir: config.WorkingDir || '/' });
      cacheCmd = cacheCmd.map((c) => c.replace(CONTENT_HASH, hash));
      createdBy = createdBy.replace(CONTENT_HASH, hash);
    }
    const probe: ContainerConfig = { ...config, Cmd: cacheCmd };
    if (useCache) {
      const hit = await findCached(store, children, image, probe);
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
    const newContainerId = () => (req.sourceDateEpoch !== undefined ? createHash('sha256').update(`${image?.id ?? ''}\n${JSON.stringify(cacheCmd)}`).digest('hex') : deps.randomId());
    const base = { parent: image?.config ?? null, parentId: image?.id ?? null, config, cacheCmd, createdBy, created, platform: req.platform, ...(stage.author ? { author: stage.author } : {}) };
    let next: ImageConfig;
    if (step.emptyLayer === true) {
      const containerId = newContainerId();
      events.running(containerId);
      next = stepImageConfig({ ...base, containerId, viaContainerCreate: true });
      events.removing(containerId);
    } else {
      const containerId = kind === 'COPY' || kind === 'ADD' ? undefined : newContainerId();
      if (containerId) events.running(containerId);
      const layer = await snapshotStep(deps, image, req.sourceDateEpoch, kind === 'RUN', async (rootfs) => {
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
          });
        } else if (kind === 'WORKDIR') {
          await runOnRootfs(rootfs, { type: 'mkdir', path: config.WorkingDir, uid: 0, gid: 0 });
        } else {
          await deps.copyStep({ rootfs, ...(fromImage ? { source: { lowerDirs: await store.lowerDirs(fromImage) } } : {}), instruction: step.instruction as CopyInstruction, contextDir: req.contextDir, dockerfileName: req.dockerfileName, workdir: config.WorkingDir || '/' });
        }
      });
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

  constructor(private readonly store: ImageStore) {}

  async of(parent: ImageId | null): Promise<StoredImage[]> {
    if (!this.map) {
      this.map = new Map();
      for (const id of await this.store.images.ids()) {
        const image = await this.store.images.get(id);
        if (image) this.add(image);
      }
    }
    return this.map.get(parent) ?? [];
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

async function copySourceImage(instr: CopyInstruction, plan: Plan, results: Map<number, StageResult>, store: ImageStore): Promise<StoredImage | undefined> {
  if (instr.from === undefined) return undefined;
  const byName = plan.stages.find((s) => s.name === instr.from!.toLowerCase());
  const index = byName ? byName.index : /^\d+$/.test(instr.from) ? Number(instr.from) : undefined;
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
 */
async function snapshotStep(deps: BuildDeps, parent: StoredImage | null, epoch: number | undefined, forRun: boolean, work: (rootfs: StepRootfs) => Promise<void>): Promise<DiffId | undefined> {
  const { store } = deps;
  const snapshotter = deps.snapshotter ? await deps.snapshotter() : undefined;
  const top: ChainId | null = parent && parent.config.rootfs.diff_ids.length > 0 ? chainIds(parent.config.rootfs.diff_ids).pop()! : null;
  const lowerDirs = await store.lowerDirs(parent);
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
    }
    if (epoch !== undefined) await clampMtimes(diffDir, epoch);
    const written = await writeLayer(diffDir);
    return written.empty ? null : { diffId: written.diffId, tarSplit: written.tarSplit, size: written.size };
  });
  return layer?.diffId;
}
