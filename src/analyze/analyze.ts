/**
 * `tsbuild analyze`: per-layer changes, dive's efficiency and wasted bytes, the
 * bytes later layers hide, and advice naming the steps (Dockerfile lines) to
 * chain, narrow or rewrite. The JSON shape (`tsbuild.analyze/v1`) is documented
 * in README.md beside this file; fields are only ever added.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hexOf } from '../image/digest.js';
import type { StoredImage } from '../store/imagedb.js';
import type { ImageStore } from '../store/store.js';
import { layerChanges, type ChangesResult, type CopyUp, type HiddenPath, type Hiding } from './changes.js';
import { diveEfficiency, type Inefficiency } from './dive.js';
import { entriesFromDiffDir, entriesFromTarSplit, type LayerEntry } from './entries.js';
import { attachDockerfile, imageSteps, stepLabel, type DockerfileOptions, type Step } from './steps.js';

export interface LayerReport {
  index: number;
  /** History index of the step that made it. */
  step: number;
  diffId: string;
  chainId: string;
  cacheId: string;
  /** layerdb `size` (what docker history shows: regular files and symlink targets, hardlinks once). */
  size: number;
  /** Σ tar header sizes (dive's layer size: regular file contents). */
  contentSize: number;
  entries: number;
  added: number;
  modified: number;
  deleted: number;
  /** Bytes of this layer's files that later layers delete or overwrite. */
  wastedBytes: number;
}

export interface StepRef {
  step: number;
  layer: number | null;
  instruction: string;
  createdBy: string;
  inherited: boolean;
  file: string | null;
  line: number | null;
  endLine: number | null;
}

export type AdviceKind = 'merge-run' | 'copy-then-remove' | 'base-then-remove' | 'overwritten' | 'copy-up';

export interface Advice {
  kind: AdviceKind;
  /** The step whose layer holds the bytes, and the later step that deletes, overwrites or copies them up. */
  from: StepRef;
  to: StepRef;
  /** Bytes the image would lose if the advice were followed. */
  bytesSaved: number;
  pathCount: number;
  /** The largest paths (at most 20). */
  paths: HiddenPath[];
  /** For copy-up: the COPY flags that would do the change at copy time, e.g. `--chmod=755 --chown=1000:1000`. */
  flags?: string;
  message: string;
}

export interface AnalysisJson {
  schema: 'tsbuild.analyze/v1';
  image: { id: string; refs: string[]; created: string; os: string; architecture: string; configPath: string; size: number; contentSize: number; layers: number };
  steps: Step[];
  layers: LayerReport[];
  efficiency: number;
  wastedBytes: number;
  userSize: number;
  wastedUserPercent: number;
  /** Paths sighted in several layers (dive's list), largest first. */
  inefficiencies: Inefficiency[];
  /** Σ bytes hidden by later layers: what following every advice would save. */
  reclaimableBytes: number;
  advice: Advice[];
}

export interface Analysis {
  json: AnalysisJson;
  /** Each layer's tar entries (for file trees). */
  entries: LayerEntry[][];
  /** What each entry did and whether a later layer hides it. */
  changes: ChangesResult;
  image: StoredImage;
}

export interface AnalyzeOptions {
  dockerfile?: DockerfileOptions;
}

async function readEntries(store: ImageStore, chainId: Parameters<ImageStore['layers']['tarSplitPath']>[0], cacheId: string): Promise<LayerEntry[]> {
  let gz: Buffer | undefined;
  try {
    gz = await readFile(store.layers.tarSplitPath(chainId));
  } catch {
    gz = undefined;
  }
  return gz ? entriesFromTarSplit(gz) : entriesFromDiffDir(join(store.overlay.dirOf(cacheId), 'diff'));
}

export function stepRef(s: Step): StepRef {
  return { step: s.index, layer: s.layer, instruction: s.instruction, createdBy: s.createdBy, inherited: s.inherited, file: s.source?.file ?? null, line: s.source?.line ?? null, endLine: s.source?.endLine ?? null };
}

function octal(mode: number): string {
  return mode.toString(8);
}

/** COPY/ADD steps between two RUNs: they must move before or after for the RUNs to merge. */
function between(steps: readonly Step[], from: Step, to: Step): string {
  const mid = steps.filter((s) => s.index > from.index && s.index < to.index && (s.instruction === 'COPY' || s.instruction === 'ADD'));
  return mid.length === 0 ? '' : ` (move ${mid.map((s) => (s.source ? `the ${s.instruction} at line ${s.source.line}` : `the ${s.instruction} of step ${s.index}`)).join(', ')} before them)`;
}

function adviseHiding(steps: readonly Step[], from: Step, to: Step, paths: HiddenPath[]): Advice {
  const bytes = paths.reduce((n, p) => n + p.size, 0);
  const deleted = paths.every((p) => p.how === 'deleted') ? 'deletes' : paths.every((p) => p.how === 'overwritten') ? 'overwrites' : 'deletes or overwrites';
  const base = { from: stepRef(from), to: stepRef(to), bytesSaved: bytes, pathCount: paths.length, paths: paths.slice(0, 20) };
  const a = stepLabel(from);
  const b = stepLabel(to);
  const n = `${paths.length} path${paths.length === 1 ? '' : 's'}`;
  if (from.inherited) {
    const fix = deleted === 'overwrites' ? 'unavoidable for files a package manager updates; otherwise avoid rewriting big base files' : 'pick a base without them, or COPY --from what you need into a slimmer final stage';
    return { ...base, kind: 'base-then-remove', message: `${b} ${deleted} ${n} of the base image (${bytes} bytes): the base layer still ships the old copies; ${fix}.` };
  }
  if (from.instruction === 'RUN' && to.instruction === 'RUN') {
    return { ...base, kind: 'merge-run', message: `${a} adds ${n} (${bytes} bytes) that ${b} ${deleted}: chain them into one RUN (… && …)${between(steps, from, to)} so the files never land in a layer; saves ${bytes} bytes.` };
  }
  if (from.instruction === 'COPY' || from.instruction === 'ADD') {
    return { ...base, kind: 'copy-then-remove', message: `${a} brings ${n} (${bytes} bytes) that ${b} ${deleted}: copy only what stays (narrow the sources, .dockerignore), or use them in a build stage and COPY --from the result; saves ${bytes} bytes.` };
  }
  return { ...base, kind: 'overwritten', message: `${a} writes ${n} (${bytes} bytes) that ${b} ${deleted}: produce the final files in one step; saves ${bytes} bytes.` };
}

function adviseCopyUps(ups: CopyUp[], from: Step, to: Step): Advice {
  const bytes = ups.reduce((n, u) => n + u.size, 0);
  const modes = new Set(ups.map((u) => (u.change.mode ? octal(u.change.mode[1]) : '')).filter((m) => m !== ''));
  const owners = new Set(ups.map((u) => u.change.owner?.[1] ?? '').filter((o) => o !== ''));
  const flags = [...(modes.size === 1 ? [`--chmod=${[...modes][0]}`] : []), ...(owners.size === 1 ? [`--chown=${[...owners][0]}`] : [])].join(' ');
  const what = modes.size > 0 && owners.size > 0 ? 'chmod/chown' : modes.size > 0 ? 'chmod' : 'chown';
  const paths: HiddenPath[] = ups.map((u) => ({ path: u.path, size: u.size, how: 'overwritten' }));
  paths.sort((x, y) => y.size - x.size);
  const n = `${ups.length} file${ups.length === 1 ? '' : 's'}`;
  const a = stepLabel(from);
  const b = stepLabel(to);
  let message: string;
  if (from.inherited) message = `${b} copies up ${n} of the base image (${bytes} bytes) only to ${what} ${ups.length === 1 ? 'it' : 'them'}: every byte is stored twice; avoid changing base files or set them right in a build stage.`;
  else if (from.instruction === 'COPY' || from.instruction === 'ADD')
    message = `${b} copies up ${n} (${bytes} bytes) from ${a} only to ${what} ${ups.length === 1 ? 'it' : 'them'}: use ${from.instruction} ${flags || '--chmod/--chown'} on that line instead and drop the ${what}; saves ${bytes} bytes.`;
  else message = `${b} copies up ${n} (${bytes} bytes) written by ${a} only to ${what} ${ups.length === 1 ? 'it' : 'them'}: do it in the same RUN; saves ${bytes} bytes.`;
  return { kind: 'copy-up', from: stepRef(from), to: stepRef(to), bytesSaved: bytes, pathCount: ups.length, paths: paths.slice(0, 20), ...(flags ? { flags } : {}), message };
}

export async function analyzeImage(store: ImageStore, ref: string, opts: AnalyzeOptions = {}): Promise<Analysis> {
  const image = await store.require(ref);
  const steps = await imageSteps(store, image);
  if (opts.dockerfile) await attachDockerfile(steps, opts.dockerfile);
  const chain = await store.layerChain(image);
  const entries: LayerEntry[][] = [];
  for (const l of chain) entries.push(await readEntries(store, l.chainId, l.cacheId));
  const dive = diveEfficiency(entries);
  const changes = layerChanges(entries);
  const stepOfLayer = (i: number): Step => steps.find((s) => s.layer === i) ?? ({ index: -1, created: '', createdBy: '', comment: '', emptyLayer: false, instruction: '', layer: i, diffId: null, chainId: null, imageId: null, inherited: i === 0, source: null } satisfies Step);

  const layers: LayerReport[] = chain.map((l, i) => ({
    index: i,
    step: stepOfLayer(i).index,
    diffId: l.diffId,
    chainId: l.chainId,
    cacheId: l.cacheId,
    size: l.size,
    contentSize: dive.layerSizes[i] ?? 0,
    entries: changes.layers[i]!.entries,
    added: changes.layers[i]!.added,
    modified: changes.layers[i]!.modified,
    deleted: changes.layers[i]!.deleted,
    wastedBytes: changes.layers[i]!.deadBytes,
  }));

  const advice: Advice[] = [];
  const copied = new Set(changes.copyUps.map((u) => `${u.from}>${u.to}>${u.path}`));
  for (const h of changes.hidings) {
    const rest = h.paths.filter((p) => !(p.how === 'overwritten' && copied.has(`${h.from}>${h.to}>${p.path}`)));
    if (rest.length > 0) advice.push(adviseHiding(steps, stepOfLayer(h.from), stepOfLayer(h.to), rest));
  }
  const ups = new Map<string, CopyUp[]>();
  for (const u of changes.copyUps) {
    const k = `${u.from}>${u.to}`;
    ups.set(k, [...(ups.get(k) ?? []), u]);
  }
  for (const list of ups.values()) advice.push(adviseCopyUps(list, stepOfLayer(list[0]!.from), stepOfLayer(list[0]!.to)));
  advice.sort((a, b) => b.bytesSaved - a.bytesSaved || (a.from.layer ?? 0) - (b.from.layer ?? 0));

  const refs = await store.referencesOf(image.id);
  return {
    image,
    entries,
    changes,
    json: {
      schema: 'tsbuild.analyze/v1',
      image: {
        id: image.id,
        refs,
        created: image.config.created,
        os: image.config.os,
        architecture: image.config.architecture,
        configPath: join(store.layout.contentDir, hexOf(image.id)),
        size: chain.reduce((n, l) => n + l.size, 0),
        contentSize: dive.layerSizes.reduce((a, b) => a + b, 0),
        layers: chain.length,
      },
      steps,
      layers,
      efficiency: dive.efficiency,
      wastedBytes: dive.wastedBytes,
      userSize: dive.userSize,
      wastedUserPercent: dive.wastedUserPercent,
      inefficiencies: dive.inefficiencies,
      reclaimableBytes: changes.deadBytes,
      advice,
    },
  };
}

export interface CiRules {
  /** Fail below this efficiency (0..1); dive's default 0.9. */
  lowestEfficiency?: number;
  /** Fail above this many wasted bytes; dive's default: disabled. */
  highestWastedBytes?: number;
  /** Fail above this wasted/user-size ratio (0..1); dive's default 0.1. */
  highestUserWastedPercent?: number;
}

export interface CiResult {
  rule: string;
  limit: number;
  value: number;
  pass: boolean;
}

/** dive --ci's rules; a rule left undefined is disabled. */
export function checkCi(a: AnalysisJson, rules: CiRules): CiResult[] {
  const out: CiResult[] = [];
  if (rules.lowestEfficiency !== undefined) out.push({ rule: 'lowestEfficiency', limit: rules.lowestEfficiency, value: a.efficiency, pass: a.efficiency >= rules.lowestEfficiency });
  if (rules.highestWastedBytes !== undefined) out.push({ rule: 'highestWastedBytes', limit: rules.highestWastedBytes, value: a.wastedBytes, pass: a.wastedBytes <= rules.highestWastedBytes });
  if (rules.highestUserWastedPercent !== undefined) out.push({ rule: 'highestUserWastedPercent', limit: rules.highestUserWastedPercent, value: a.wastedUserPercent, pass: a.wastedUserPercent <= rules.highestUserWastedPercent });
  return out;
}
