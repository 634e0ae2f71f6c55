/**
 * The image config each build step commits, as Docker's classic builder writes
 * it: config = the stage's config after the step (Image = the parent image),
 * container_config = the same with the step's Cmd (the cache key), a history
 * entry appended, and the new diffID (if any) added to rootfs.
 */
import type { ContainerConfig, HistoryEntry } from '../image/config.js';
import type { DiffId, ImageId } from '../image/digest.js';
import type { ImageConfig } from '../image/image.js';
import type { Platform } from '../plan/types.js';
import { TSBUILD_VERSION } from '../version.js';

export interface StepImageInput {
  parent: ImageConfig | null;
  parentId: ImageId | null;
  /** The stage config after this step. */
  config: ContainerConfig;
  /** container_config.Cmd: the classic cache key. */
  cacheCmd: string[];
  createdBy: string;
  /** The build container's ID; undefined for COPY/ADD, which Docker commits without one. */
  containerId?: string;
  /** The layer the step made, or undefined for an empty one. */
  diffId?: DiffId;
  created: string;
  platform: Platform;
  author?: string;
  /**
   * Metadata and WORKDIR steps: Docker commits them from a created container whose
   * config has an empty label map, so container_config.Labels reads `{}`, not null.
   */
  viaContainerCreate?: boolean;
  /** The history entry's comment (BuildKit style). */
  historyComment?: string;
  /** Commit without a history entry (BuildKit style ONBUILD). */
  noHistory?: boolean;
}

/** The planned step's history options, as stepImageConfig takes them. */
export function stepHistory(step: { historyComment?: string; noHistory?: boolean }): Pick<StepImageInput, 'historyComment' | 'noHistory'> {
  return { ...(step.historyComment ? { historyComment: step.historyComment } : {}), ...(step.noHistory ? { noHistory: true } : {}) };
}

export function stepImageConfig(input: StepImageInput): ImageConfig {
  const image = input.parentId ?? '';
  const config: ContainerConfig = { ...structuredClone(input.config), Hostname: '', Image: image };
  const containerConfig: ContainerConfig = {
    ...structuredClone(input.config),
    Hostname: input.containerId ? input.containerId.slice(0, 12) : '',
    Cmd: [...input.cacheCmd],
    Image: image,
  };
  if (input.viaContainerCreate && containerConfig.Labels === null) containerConfig.Labels = {};
  const entry: HistoryEntry = { created: input.created, created_by: input.createdBy };
  if (input.author) entry.author = input.author;
  if (input.historyComment) entry.comment = input.historyComment;
  if (!input.diffId) entry.empty_layer = true;
  const out: ImageConfig = {
    architecture: input.parent?.architecture ?? input.platform.architecture,
    config,
    container_config: containerConfig,
    created: input.created,
    docker_version: TSBUILD_VERSION,
    history: [...(input.parent?.history ?? []), ...(input.noHistory ? [] : [entry])],
    os: input.parent?.os ?? input.platform.os,
    rootfs: { type: 'layers', diff_ids: [...(input.parent?.rootfs.diff_ids ?? []), ...(input.diffId ? [input.diffId] : [])] },
  };
  if (input.author) out.author = input.author;
  if (input.containerId) out.container = input.containerId;
  const variant = input.parent ? input.parent.variant : input.platform.variant;
  if (variant) out.variant = variant;
  return out;
}

/**
 * Docker's cache comparison (image/cache/compare.go): two container configs match
 * when Cmd, Env, Entrypoint are equal element-wise, Labels, ExposedPorts and
 * Volumes hold the same keys (and label values), and User, Tty, attach flags agree.
 * Image and Hostname are not compared; OpenStdin never matches.
 */
export function sameCacheConfig(a: ContainerConfig, b: ContainerConfig): boolean {
  if (a.OpenStdin || b.OpenStdin) return false;
  if (a.AttachStdout !== b.AttachStdout || a.AttachStderr !== b.AttachStderr || a.User !== b.User || a.Tty !== b.Tty) return false;
  const list = (x: string[] | null | undefined) => x ?? [];
  const keys = (x: Record<string, unknown> | null | undefined) => Object.keys(x ?? {});
  const eqList = (x: string[], y: string[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  if (!eqList(list(a.Cmd), list(b.Cmd)) || !eqList(list(a.Env), list(b.Env)) || !eqList(list(a.Entrypoint), list(b.Entrypoint))) return false;
  const la = a.Labels ?? {};
  const lb = b.Labels ?? {};
  if (keys(la).length !== keys(lb).length || keys(la).some((k) => la[k] !== lb[k])) return false;
  const sameKeys = (x: Record<string, unknown> | null | undefined, y: Record<string, unknown> | null | undefined) => keys(x).length === keys(y).length && keys(x).every((k) => k in (y ?? {}));
  return sameKeys(a.ExposedPorts, b.ExposedPorts) && sameKeys(a.Volumes, b.Volumes);
}
