// Benchmarks (not tests): `npm run bench`. Prints one line per measurement and
// saves bench/results.json.
// parse: `tsbuild parse --json` of a generated 1,000-instruction Dockerfile,
// end to end through the compiled CLI (node start-up included), and the
// planner alone in-process.
// seed: the seeds' experiment with an 8 MB RUN, cold (fresh root / --no-cache)
// and warm (everything cached), medians of 3, against Docker's classic builder
// and BuildKit on a private dockerd when docker.io is installed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { runBuild } from '../src/exec/run-build.js';
import { hostPlatform } from '../src/plan/platform.js';
import { importRootfs } from '../src/store/import.js';
import { ImageStore } from '../src/store/store.js';
import { busyboxRootfsTar, dockerUnavailableReason, importBusyboxBase, startDockerd } from '../test/support/dockerd.js';
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

/** The seed experiment with an 8 MB RUN, cold and warm, against Docker's builders on a private dockerd. */
async function benchSeed(results: Record<string, unknown>): Promise<void> {
  if (process.getuid?.() !== 0 || !existsSync('/bin/busybox')) {
    console.log('seed: skipped (needs root and busybox-static)');
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'tsbuild-bench-seed-'));
  const ctx = join(work, 'ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nLABEL name=test-image\nRUN echo hello > /hello.txt\nRUN dd if=/dev/zero of=/blob bs=1M count=8 2>/dev/null\nCOPY startService.sh /\nCMD ["/bin/sh", "/startService.sh"]\n');
  writeFileSync(join(ctx, 'startService.sh'), 'echo started\n');
  const runs = 3;
  const timings: Record<string, { cold: number[]; warm: number[] }> = {};
  try {
    const base = busyboxRootfsTar();
    const ours = { cold: [] as number[], warm: [] as number[] };
    for (let i = 0; i < runs; i++) {
      const root = join(work, `root-${i}`);
      const store = await ImageStore.open(root);
      await importRootfs(store, Readable.from([base]), { reference: 'busybox:latest', platform: hostPlatform() });
      for (const kind of ['cold', 'warm'] as const) {
        const t0 = performance.now();
        await runBuild({ root, contextDir: ctx, tags: ['seed'] });
        ours[kind].push(performance.now() - t0);
      }
    }
    timings['tsbuild'] = ours;
    if (dockerUnavailableReason() === undefined) {
      const d = await startDockerd();
      try {
        await importBusyboxBase(d, ['busybox:latest']);
        for (const [name, env, extra] of [
          ['docker classic', { DOCKER_BUILDKIT: '0' }, [] as string[]],
          ['buildkit', { DOCKER_BUILDKIT: '1' }, ['--network=host']],
        ] as const) {
          const t = { cold: [] as number[], warm: [] as number[] };
          for (let i = 0; i < runs; i++) {
            for (const kind of ['cold', 'warm'] as const) {
              const t0 = performance.now();
              const r = await d.docker(['build', ...extra, ...(kind === 'cold' ? ['--no-cache'] : []), '-q', '-t', 'seed', ctx], { env: { ...env } });
              if (r.code !== 0) throw new Error(`${name} build failed: ${r.stderr}`);
              t[kind].push(performance.now() - t0);
            }
          }
          timings[name] = t;
        }
      } finally {
        await d.stop();
      }
    } else {
      console.log(`seed: no Docker anchors (${dockerUnavailableReason()})`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const ref = timings['buildkit'] ?? timings['docker classic'];
  for (const [name, t] of Object.entries(timings)) {
    const cold = median(t.cold);
    const warm = median(t.warm);
    const ratio = ref && name === 'tsbuild' ? `  (${(cold / median(ref.cold)).toFixed(2)}× / ${(warm / median(ref.warm)).toFixed(2)}× of ${timings['buildkit'] ? 'BuildKit' : 'classic'})` : '';
    console.log(`seed: ${name.padEnd(15)} cold ${cold.toFixed(0).padStart(6)} ms   warm ${warm.toFixed(0).padStart(6)} ms${ratio}`);
  }
  results['seed'] = Object.fromEntries(Object.entries(timings).map(([k, t]) => [k, { coldMs: median(t.cold), warmMs: median(t.warm), runs: t }]));
}

const results: Record<string, unknown> = { machine: { cpus: cpus().length, node: process.version, date: new Date().toISOString() } };
benchParse();
await benchSeed(results);
writeFileSync(new URL('./results.json', import.meta.url), JSON.stringify(results, null, 2) + '\n');
console.log('results: bench/results.json');
