// Benchmarks (not tests): `npm run bench`. Prints one line per measurement.
// parse: `tsbuild parse --json` of a generated 1,000-instruction Dockerfile,
// end to end through the compiled CLI (node start-up included), and the
// planner alone in-process.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { planBuild } from '../src/plan/planner.js';

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

function benchParse(): void {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-bench-'));
  try {
    const file = join(dir, 'Dockerfile');
    const text = generateDockerfile(1000);
    writeFileSync(file, text);
    const cli = new URL('../bin/tsbuild', import.meta.url).pathname;
    const runs: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      execFileSync(process.execPath, [cli, 'parse', '--json', '-f', file], { stdio: ['ignore', 'ignore', 'inherit'] });
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

benchParse();
