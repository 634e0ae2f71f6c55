// Benchmarks (not tests): `npm run bench`. Prints one line per measurement, a
// markdown table (the README's Performance section) and saves bench/results.json.
//
// parse: `tsbuild parse --json` of a generated 1,000-instruction Dockerfile (CLI
// and planner in-process). Builds (root + busybox-static needed): fixtures made
// in a temp dir (bench/fixtures.ts) — seed, bigcopy (20,000 files ≈ 400 MB in
// one COPY), bigrun (a RUN writing 512 MB in 64 files, then a RUN deleting half),
// steps50 — each built cold and warm by tsbuild (the compiled CLI in a child
// process, peak RSS read), Docker classic and BuildKit on a private dockerd,
// and Buildah when installed; floors (bench/floors.ts) in the same run; then a
// scale series (context of 10k/100k[/1M] small files, 10/50/100 steps).
//
// Environment: BENCH_RUNS (default 3; medians), BENCH_SCALE (default 1: sizes of
// bigcopy/bigrun, e.g. 0.1 for a quick run), BENCH_ONLY=seed,bigcopy,… (fixtures
// to run), BENCH_ANCHORS=0 (tsbuild only), BENCH_SCALE_SERIES=0 (skip it),
// BENCH_HUGE=1 (add the 1M-file context). BENCH_SCALE also scales the series.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { planBuild } from '../src/plan/planner.js';
import { buildBenches } from './builds.js';
import { compileCli } from './tsbuild-cli.js';

export function generateDockerfile(instructions: number): string {
  const lines = ['# syntax=docker/dockerfile:1', 'ARG BASE=alpine:3.19', 'FROM ${BASE} AS build'];
  const kinds = [
    (i: number) => `ENV V${i}=value-${i} W${i}="\${V${i}:-x} y"`,
    (i: number) => `RUN echo step ${i} > /tmp/f${i} && \\\n    cat /tmp/f${i}`,
    (i: number) => `LABEL l${i}="label ${i}"`,
    (i: number) => `COPY --chown=1000:1000 src/${i}.txt /app/${i}/`,
    (i: number) => `WORKDIR /w/${i}`,
    (i: number) => `ARG A${i}=${i}`,
    (i: number) => `RUN <<EOF\necho heredoc ${i}\nEOF`,
    (i: number) => `EXPOSE ${1000 + i}/tcp`,
  ];
  for (let i = 0; lines.length < instructions; i++) {
    if (i > 0 && i % 200 === 0) lines.push(`FROM build AS s${i}`);
    else lines.push(kinds[i % kinds.length]!(i));
  }
  return lines.join('\n') + '\n';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function benchParse(cli: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-bench-'));
  try {
    const file = join(dir, 'Dockerfile');
    const text = generateDockerfile(1000);
    writeFileSync(file, text);
    const runs: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      execFileSync(cli, ['parse', '--json', '-f', file], { stdio: ['ignore', 'ignore', 'inherit'] });
      runs.push(performance.now() - t0);
    }
    const base = performance.now();
    execFileSync(process.execPath, ['-e', '0']);
    const nodeStart = performance.now() - base;
    const inProc: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      planBuild(text);
      inProc.push(performance.now() - t0);
    }
    console.log(`parse: 1000-instruction Dockerfile, tsbuild parse --json (CLI, median of 7): ${median(runs).toFixed(0)} ms (bare node start ${nodeStart.toFixed(0)} ms)`);
    console.log(`parse: planner in-process (median of 20): ${median(inProc).toFixed(1)} ms`);
    console.log('parse: no anchor — docker/BuildKit/buildah have no parse-only command to time against');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function machine(): Record<string, unknown> {
  const cpu = cpus();
  let kernel = '';
  try {
    kernel = execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim();
  } catch {
    /* not fatal */
  }
  return { cpus: cpu.length, cpuModel: cpu[0]?.model ?? '', memGiB: +(totalmem() / 2 ** 30).toFixed(1), freeGiB: +(freemem() / 2 ** 30).toFixed(1), kernel, node: process.version, date: new Date().toISOString() };
}

const results: Record<string, unknown> = { machine: machine() };
console.log('compiling the CLI…');
const launcher = compileCli();
benchParse(launcher);
if (process.getuid?.() !== 0 || !existsSync('/bin/busybox')) {
  console.log('builds: skipped (need root and busybox-static)');
} else {
  const work = mkdtempSync(join(tmpdir(), 'tsbuild-bench-'));
  try {
    Object.assign(results, await buildBenches(work, launcher));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
writeFileSync(new URL('./results.json', import.meta.url), JSON.stringify(results, null, 2) + '\n');
console.log('results: bench/results.json');
