/**
 * Steps: an image's history entries, each with its instruction, the layer it
 * made (if any), the step image along the metadata parent chain, whether it
 * came with the base image, and — when a Dockerfile is given — its source lines.
 *
 * `source` comes from what tsbuild recorded when it built the step
 * (`via: "recorded"`, see store/step-sources.ts), or from planning a Dockerfile
 * the caller names and matching each planned step's `created_by` with the
 * history from the end (`via: "dockerfile"`).
 */
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { chainIdOf, type ChainId, type DiffId, type ImageId } from '../image/digest.js';
import { planBuild } from '../plan/planner.js';
import type { Plan, PlannedStage, PlannedStep } from '../plan/types.js';
import type { StoredImage } from '../store/imagedb.js';
import type { ImageStore } from '../store/store.js';
import { TsbuildError } from '../errors.js';
import { readStepSource } from '../store/step-sources.js';

export interface StepSource {
  file: string;
  line: number;
  endLine: number;
  /** The instruction as written (continuations joined). */
  text: string;
  via: 'dockerfile' | 'recorded';
}

export interface Step {
  /** Index in the config's history (0 = oldest). */
  index: number;
  created: string;
  createdBy: string;
  comment: string;
  emptyLayer: boolean;
  /** RUN, COPY, ADD, LABEL, … from created_by; '' when unknown (e.g. an imported rootfs). */
  instruction: string;
  /** Index into rootfs.diff_ids of the layer this step made, or null for an empty layer. */
  layer: number | null;
  diffId: DiffId | null;
  chainId: ChainId | null;
  /** The image this step committed, where the metadata parent chain reaches (docker history's IMAGE). */
  imageId: ImageId | null;
  /** The step came with the base image (before the first step built on it). */
  inherited: boolean;
  source: StepSource | null;
}

/** The instruction keyword a history entry's created_by names. */
export function instructionOf(createdBy: string): string {
  const nop = createdBy.match(/#\(nop\)\s+([A-Za-z]+)/);
  if (nop) return nop[1]!.toUpperCase();
  const t = createdBy.trim();
  if (t === '') return '';
  // BuildKit: `RUN /bin/sh -c … # buildkit`, `COPY x /y # buildkit`, `LABEL …`, `ENV …`.
  const kw = t.match(/^([A-Z]+)\b/);
  if (kw && ['RUN', 'COPY', 'ADD', 'ENV', 'LABEL', 'CMD', 'ENTRYPOINT', 'EXPOSE', 'USER', 'WORKDIR', 'VOLUME', 'ARG', 'SHELL', 'STOPSIGNAL', 'HEALTHCHECK', 'ONBUILD', 'MAINTAINER'].includes(kw[1]!)) return kw[1]!;
  // Classic RUN: the command (shell form `/bin/sh -c …`, exec form joined), maybe after `|N K=V …`.
  return 'RUN';
}

/** The steps of an image, base first; `image`'s history against the store's parent chain. */
export async function imageSteps(store: ImageStore, image: StoredImage): Promise<Step[]> {
  const cfg = image.config;
  const chain: StoredImage[] = [];
  for (let cur: StoredImage | undefined = image; cur; cur = cur.parent ? await store.images.get(cur.parent) : undefined) chain.push(cur);
  const history = cfg.history ?? [];
  // The root of the parent chain is the base the steps were built on: an imported image (no
  // container Cmd) or a tagged one. An untagged root with a Cmd is a FROM scratch build's first step.
  const root = chain[chain.length - 1]!;
  const rootIsBase = chain.length > 1 && (!root.config.container_config?.Cmd || (await store.referencesOf(root.id)).length > 0);
  const baseEntries = rootIsBase ? (root.config.history ?? []).length : 0;
  const steps: Step[] = [];
  let layer = 0;
  let chainId: ChainId | null = null;
  for (const [index, h] of history.entries()) {
    const empty = h.empty_layer === true;
    let diffId: DiffId | null = null;
    if (!empty) {
      diffId = cfg.rootfs.diff_ids[layer] ?? null;
      if (diffId === null) throw new TsbuildError('BAD_IMAGE', 'too many non-empty layers in History section');
      chainId = chainIdOf(chainId, diffId);
    }
    steps.push({
      index,
      created: h.created,
      createdBy: h.created_by ?? '',
      comment: h.comment ?? '',
      emptyLayer: empty,
      instruction: instructionOf(h.created_by ?? ''),
      layer: empty ? null : layer,
      diffId,
      chainId: empty ? null : chainId,
      imageId: null,
      inherited: index < baseEntries,
      source: null,
    });
    if (!empty) layer++;
  }
  // docker history: the newest entry is the image itself, each older one its parent, while there is one.
  for (let i = 0; i < chain.length && i < steps.length; i++) {
    const step = steps[steps.length - 1 - i]!;
    step.imageId = chain[i]!.id;
    // Steps tsbuild built know their Dockerfile lines.
    const recorded = step.inherited ? undefined : await readStepSource(store.root, step.imageId);
    if (recorded) step.source = { ...recorded, via: 'recorded' };
  }
  return steps;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A planned step's created_by as a pattern: content hashes are unknown until the build, build args prefix RUNs. */
function stepPattern(step: PlannedStep): RegExp {
  const body = escapeRe(step.createdBy).replace(escapeRe('<content-hash>'), '[a-z]+:[0-9a-f]{64}');
  return new RegExp(`^(?:\\|\\d+ .*? )?${body}$`, 's');
}

/** The planned steps that make the target image, base stages first. */
export function targetSteps(plan: Plan): PlannedStep[] {
  const out: PlannedStep[][] = [];
  for (let i: number | undefined = plan.target; i !== undefined; ) {
    const stage: PlannedStage | undefined = plan.stages[i];
    if (!stage) break;
    out.unshift(stage.steps);
    i = stage.base.kind === 'stage' ? stage.base.index : undefined;
  }
  return out.flat();
}

export interface DockerfileOptions {
  path: string;
  buildArgs?: Record<string, string | undefined>;
  target?: string;
}

/**
 * Attaches Dockerfile lines: the target's planned steps are matched with the
 * history from the newest entry back. Entries older than the first matched
 * step are the base image's. Returns the number of steps matched.
 */
export async function attachDockerfile(steps: Step[], opts: DockerfileOptions): Promise<number> {
  const text = await readFile(opts.path, 'utf8');
  const file = relative(process.cwd(), opts.path) || opts.path;
  const plan = planBuild(text, { file, ...(opts.buildArgs ? { buildArgs: opts.buildArgs } : {}), ...(opts.target !== undefined ? { target: opts.target } : {}) });
  const planned = targetSteps(plan);
  let h = steps.length - 1;
  let p = planned.length - 1;
  let matched = 0;
  while (h >= 0 && p >= 0) {
    const step = steps[h]!;
    const ps = planned[p]!;
    if (!stepPattern(ps).test(step.createdBy)) break;
    step.source = { file, line: ps.line, endLine: ps.endLine, text: ps.text, via: 'dockerfile' };
    matched++;
    h--;
    p--;
  }
  if (matched > 0) for (const s of steps) s.inherited = s.index <= h;
  return matched;
}

/** How a step is named in advice and reports: `line 4 (RUN …)` or `step 3 (RUN …)`. */
export function stepLabel(s: Step): string {
  const what = (s.source ? s.source.text : s.createdBy.replace(/^.*#\(nop\)\s+/, '').replace(/^\/bin\/sh -c /, `${s.instruction} `)).replace(/\s+/g, ' ');
  const short = what.length > 60 ? `${what.slice(0, 57)}...` : what;
  if (s.source) return `${s.source.file}:${s.source.line}${s.source.endLine !== s.source.line ? `-${s.source.endLine}` : ''} (${short})`;
  return `step ${s.index}${s.inherited ? ' [base image]' : ''} (${short || s.comment || 'no created_by'})`;
}
