/** Command-line pieces shared by layers, analyze, explain and compare. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { TsbuildError } from '../errors.js';
import type { AnalyzeOptions } from './analyze.js';

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export interface DockerfileCliOptions {
  dockerfile?: string;
  buildArg: string[];
  target?: string;
}

/** `--dockerfile PATH [--build-arg K=V]… [--target T]`: attach Dockerfile lines to the steps. */
export function dockerfileOptions(cmd: Command): Command {
  return cmd
    .option('--dockerfile <path>', 'plan this Dockerfile and attach its lines to the matching steps')
    .option('--build-arg <K[=V]>', 'build args for planning --dockerfile (repeatable)', collect, [] as string[])
    .option('--target <stage>', 'the stage --dockerfile built');
}

export function analyzeOptionsFrom(o: DockerfileCliOptions, env: NodeJS.ProcessEnv = process.env): AnalyzeOptions {
  if (o.dockerfile === undefined) return {};
  const buildArgs: Record<string, string | undefined> = {};
  for (const v of o.buildArg) {
    const eq = v.indexOf('=');
    if (eq < 0) buildArgs[v] = env[v];
    else buildArgs[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return { dockerfile: { path: resolve(o.dockerfile), buildArgs, ...(o.target !== undefined ? { target: o.target } : {}) } };
}

/** `text` or `json`. */
export function outputFormat(v: string | undefined): 'text' | 'json' {
  if (v === undefined || v === 'text' || v === 'table') return 'text';
  if (v === 'json') return 'json';
  throw new TsbuildError('USAGE', `unknown --format ${v}: use text or json`);
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 };

/** A byte count: `1048576`, `20MB`, `1.5GiB` (go-units style; decimal kB/MB, binary KiB/MiB); `disabled` → undefined. */
export function parseBytes(s: string): number | undefined {
  if (s.toLowerCase() === 'disabled') return undefined;
  const m = s.trim().match(/^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new TsbuildError('USAGE', `not a size: ${s}`);
  return Math.round(Number(m[1]) * unit);
}

/** A ratio: `0.9`, `90%`; `disabled` → undefined. */
export function parseRatio(s: string): number | undefined {
  if (s.toLowerCase() === 'disabled') return undefined;
  const pct = s.endsWith('%');
  const v = Number(pct ? s.slice(0, -1) : s);
  if (!Number.isFinite(v)) throw new TsbuildError('USAGE', `not a ratio: ${s}`);
  return pct ? v / 100 : v;
}
