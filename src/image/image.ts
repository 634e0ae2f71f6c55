/**
 * The image config document (imagedb content), read and written in the exact
 * byte form Docker 20.10's classic builder produces (STORE-FORMAT.md §4).
 */
import type { ContainerConfig, HistoryEntry } from './config.js';
import { goJson, goMap, type GoJson } from './gojson.js';
import type { DiffId } from './digest.js';

export interface ImageConfig {
  architecture: string;
  author?: string;
  comment?: string;
  config: ContainerConfig;
  container?: string;
  container_config: ContainerConfig;
  created: string;
  docker_version: string;
  history: HistoryEntry[];
  os: string;
  /** Present in configs written by newer tools; kept when read. */
  variant?: string;
  rootfs: { type: 'layers'; diff_ids: DiffId[] };
}

const emptyToUndefined = <T>(v: T | undefined | null, empty: (x: T) => boolean): T | undefined => (v === undefined || v === null || empty(v) ? undefined : v);

/** ContainerConfig in Docker's struct field order, omitempty where Docker has it. */
export function containerConfigJson(c: ContainerConfig): GoJson {
  return {
    Hostname: c.Hostname,
    Domainname: c.Domainname,
    User: c.User,
    AttachStdin: c.AttachStdin,
    AttachStdout: c.AttachStdout,
    AttachStderr: c.AttachStderr,
    ExposedPorts: emptyToUndefined(c.ExposedPorts, (x) => Object.keys(x).length === 0) ? goMap(c.ExposedPorts as Record<string, GoJson>) : undefined,
    Tty: c.Tty,
    OpenStdin: c.OpenStdin,
    StdinOnce: c.StdinOnce,
    Env: c.Env,
    Cmd: c.Cmd,
    Healthcheck: c.Healthcheck
      ? {
          Test: c.Healthcheck.Test,
          Interval: c.Healthcheck.Interval || undefined,
          Timeout: c.Healthcheck.Timeout || undefined,
          StartPeriod: c.Healthcheck.StartPeriod || undefined,
          StartInterval: c.Healthcheck.StartInterval || undefined,
          Retries: c.Healthcheck.Retries || undefined,
        }
      : undefined,
    ArgsEscaped: c.ArgsEscaped || undefined,
    Image: c.Image,
    Volumes: goMap(c.Volumes as Record<string, GoJson> | null),
    WorkingDir: c.WorkingDir,
    Entrypoint: c.Entrypoint,
    OnBuild: c.OnBuild,
    Labels: goMap(c.Labels),
    StopSignal: c.StopSignal || undefined,
    Shell: c.Shell && c.Shell.length > 0 ? c.Shell : undefined,
  };
}

function historyJson(h: HistoryEntry): GoJson {
  return {
    created: h.created,
    author: h.author || undefined,
    created_by: h.created_by || undefined,
    comment: h.comment || undefined,
    empty_layer: h.empty_layer || undefined,
  };
}

/** The exact config bytes; their sha256 is the image ID. */
export function serializeImageConfig(img: ImageConfig): Buffer {
  const doc: GoJson = {
    architecture: img.architecture,
    author: img.author || undefined,
    comment: img.comment || undefined,
    config: containerConfigJson(img.config),
    container: img.container || undefined,
    container_config: containerConfigJson(img.container_config),
    created: img.created,
    docker_version: img.docker_version,
    history: img.history.map(historyJson),
    os: img.os,
    rootfs: { type: img.rootfs.type, diff_ids: img.rootfs.diff_ids },
    variant: img.variant || undefined,
  };
  return Buffer.from(goJson(doc));
}

/** Go's RFC3339Nano: nanoseconds with trailing zeros trimmed, always UTC here. */
export function rfc3339Nano(date: Date, extraNanos = 0): string {
  const iso = date.toISOString(); // 2026-11-23T04:01:08.123Z
  const nanos = String(date.getUTCMilliseconds() * 1e6 + extraNanos).padStart(9, '0').replace(/0+$/, '');
  return iso.slice(0, 19) + (nanos ? '.' + nanos : '') + 'Z';
}
