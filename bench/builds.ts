/**
 * The build benchmarks: fixtures × builders, cold and warm, floors and the
 * scale series. Returns what results.json keeps; prints as it goes.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxRootfsTar, dockerUnavailableReason, importBusyboxBase, startDockerd, type Dockerd } from '../test/support/dockerd.js';
import { buildahAnchor, buildahAvailable, dockerAnchors, sampleAnchor, type Anchor } from './anchors.js';
import { BASE_IMAGE, copyFixture, runFixture, seedFixture, stepsFixture, warmUpContext, type Fixture } from './fixtures.js';
import { copyFloor, HASHER, runFloor } from './floors.js';
import { markdownTable, median, ms, ratio, scaleTable, type FixtureResult, type Sample } from './stats.js';
import { runCli } from './tsbuild-cli.js';

function envNumber(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(v)}`);
  return n;
}

interface Ctx {
  work: string;
  launcher: string;
  baseTar: string;
  runs: number;
  /** Every builder's warm-up build, run after the caches are dropped (settleDisk). */
  warm: Array<() => Promise<void>>;
}

/** `runs` × (fresh root with the base imported, cold build, warm build, then `after`). */
async function sampleTsbuild(c: Ctx, fx: Fixture, runs = c.runs, after?: () => void): Promise<Sample> {
  const s: Sample = { cold: [], warm: [], rssMiB: [] };
  for (let i = 0; i < runs; i++) {
    const root = join(c.work, `tsbuild-root`);
    rmSync(root, { recursive: true, force: true });
    try {
      await runCli(c.launcher, ['import', '--root', root, c.baseTar, BASE_IMAGE]);
      await settleDisk(fx.context, c.warm);
      const cold = await runCli(c.launcher, ['build', '--root', root, '-q', '-t', `bench-${fx.name}`, fx.context]);
      s.cold.push(cold.ms);
      s.rssMiB!.push(cold.rssMiB);
      s.warm.push((await runCli(c.launcher, ['build', '--root', root, '-q', '-t', `bench-${fx.name}`, fx.context])).ms);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    after?.();
  }
  return s;
}

/**
 * Before each cold build (not timed): write everything out and drop the caches, then read the
 * context back in. This disk's ext4 has no journal, and there ext4 skips the inodes freed in the
 * last minute while their inode-table blocks are cached: creating 20,000 files right after a
 * builder deleted its previous 20,000 (tsbuild's old root, BuildKit's pruned cache) scanned past
 * them at every create, and the same cold build took 3 s, then 7, 11 and 14 s. Dropping the
 * clean blocks ends that for every builder alike; the context is warm again for all of them, and
 * so is every builder's code (`warm`: each one builds fixtures.ts warmUpContext without its
 * cache): a running dockerd keeps its mapped pages through the drop, while node, the docker CLI,
 * runc and buildah would start from disk, and a `--version` reads back only part of them (a cold
 * seed build by tsbuild after one was ≈ 45 ms slower than after a warm-up build).
 */
async function settleDisk(context: string, warm: ReadonlyArray<() => Promise<void>>): Promise<void> {
  execFileSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    // Not root: the effect stays (and the numbers vary more).
  }
  // Through cat: GNU tar reads no file contents when its archive is /dev/null.
  execFileSync('sh', ['-c', 'tar -c -C "$1" . | cat >/dev/null', 'sh', context]);
  for (const warmUp of warm) await warmUp();
}

function report(name: string, r: FixtureResult): void {
  const ours = r.builders['tsbuild'];
  for (const [b, s] of Object.entries(r.builders)) {
    const rss = s.rssMiB && s.rssMiB.length > 0 ? `   peak RSS ${Math.max(...s.rssMiB).toFixed(0)} MiB` : '';
    const vs = ours && b !== 'tsbuild' ? `   (tsbuild/${b}: cold ${ratio(median(ours.cold), median(s.cold))}, warm ${ratio(median(ours.warm), median(s.warm))})` : '';
    console.log(`${name}: ${b.padEnd(15)} cold ${ms(median(s.cold)).padStart(8)}   warm ${ms(median(s.warm)).padStart(8)}${rss}${vs}`);
  }
  for (const [f, xs] of Object.entries(r.floors)) {
    console.log(`${name}: floor ${f}: ${ms(median(xs))}${ours ? `   (tsbuild cold / floor ${ratio(median(ours.cold), median(xs))})` : ''}`);
  }
  for (const n of r.notes) console.log(`${name}: ${n}`);
}

/** `launcher`: the compiled CLI (tsbuild-cli.ts compileCli). */
export async function buildBenches(work: string, launcher: string): Promise<Record<string, unknown>> {
  const scale = envNumber('BENCH_SCALE', 1);
  const runs = Math.round(envNumber('BENCH_RUNS', 3));
  const only = process.env['BENCH_ONLY']?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const wanted = (name: string) => only === undefined || only.includes(name);
  const anchorsOn = process.env['BENCH_ANCHORS'] !== '0';

  const baseTar = join(work, 'busybox.tar');
  const base = busyboxRootfsTar();
  writeFileSync(baseTar, base);
  const fxDir = join(work, 'fixtures');
  mkdirSync(fxDir);
  const warmUp = warmUpContext(fxDir);
  // tsbuild's warm-up builds go to a root of their own, never the one measured.
  const warmRoot = join(work, 'tsbuild-warm-up-root');
  await runCli(launcher, ['import', '--root', warmRoot, baseTar, BASE_IMAGE]);
  const c: Ctx = { work, launcher, baseTar, runs, warm: [async () => void (await runCli(launcher, ['build', '--no-cache', '--root', warmRoot, '-q', '-t', 'bench-warm-up', warmUp]))] };

  const fixtures: Fixture[] = [];
  if (wanted('seed')) fixtures.push(seedFixture(fxDir));
  if (wanted('bigcopy')) fixtures.push(copyFixture(fxDir, 'bigcopy', Math.max(1, Math.round(20_000 * scale)), 400e6 * scale));
  if (wanted('bigrun')) fixtures.push(runFixture(fxDir, Math.max(64, Math.round(512 * scale))));
  if (wanted('steps50')) fixtures.push(stepsFixture(fxDir, 50));
  console.log(`builds: ${fixtures.map((f) => f.name + (f.bytes ? ` (${f.files !== undefined ? `${f.files} files, ` : ''}${(f.bytes / 2 ** 20).toFixed(0)} MiB)` : '')).join(', ')}; ${runs} runs each`);

  const anchors: Anchor[] = [];
  let dockerd: Dockerd | undefined;
  let buildah: Awaited<ReturnType<typeof buildahAnchor>> | undefined;
  const notes: string[] = [];
  const results: Record<string, FixtureResult> = {};
  try {
    if (anchorsOn) {
      const why = dockerUnavailableReason();
      if (why === undefined) {
        dockerd = await startDockerd();
        await importBusyboxBase(dockerd, [BASE_IMAGE]);
        const docker = dockerAnchors(dockerd);
        anchors.push(...docker);
        for (const a of docker) c.warm.push(() => a.warmUp(warmUp));
      } else {
        notes.push(`no Docker anchors (${why})`);
      }
      if (buildahAvailable()) {
        try {
          const archive = join(work, 'busybox-save.tar');
          const root = join(work, 'save-root');
          await runCli(launcher, ['import', '--root', root, baseTar, BASE_IMAGE]);
          await runCli(launcher, ['save', '--root', root, '-o', archive, BASE_IMAGE]);
          rmSync(root, { recursive: true, force: true });
          buildah = await buildahAnchor(work, archive);
          anchors.push(buildah);
          const b = buildah;
          c.warm.push(() => b.warmUp(warmUp));
        } catch (e) {
          notes.push(`no Buildah anchor: ${(e as Error).message}`);
        }
      } else {
        notes.push('no Buildah anchor (buildah not installed: apt-get install buildah)');
      }
    }
    for (const n of notes) console.log(`builds: ${n}`);

    for (const fx of fixtures) {
      const r: FixtureResult = { builders: {}, floors: {}, notes: [] };
      // The RUN floor is sampled right after each of tsbuild's samples: this machine's speed drifts
      // (the same chroot RUN took 1.6 s and 2.4 s within minutes), and tsbuild / floor compares
      // like with like only when both are taken at the same time.
      const runCommand = fx.kind === 'run' ? fx.runCommand : undefined;
      const floor = { run: [] as number[], runAndHash: [] as number[] };
      const sampleFloor = runCommand
        ? () => {
            const f = runFloor(base, runCommand, work, 1);
            floor.run.push(...f.run);
            floor.runAndHash.push(...f.runAndHash);
          }
        : undefined;
      r.builders['tsbuild'] = await sampleTsbuild(c, fx, runs, sampleFloor);
      for (const a of anchors) {
        try {
          r.builders[a.name] = await sampleAnchor(a, fx, runs, () => settleDisk(fx.context, c.warm));
        } catch (e) {
          r.notes.push(`${a.name}: ${(e as Error).message}`);
        }
      }
      if (runCommand) {
        r.floors['RUN alone in a chroot'] = floor.run;
        r.floors[`RUN + tar -c | ${HASHER} of its rootfs`] = floor.runAndHash;
      }
      if (fx.kind === 'copy' && fx.copyDir) r.floors[`tar -c | ${HASHER}`] = copyFloor(fx.context, fx.copyDir, runs);
      report(fx.name, r);
      results[fx.name] = r;
    }
  } finally {
    await buildah?.dispose();
    await dockerd?.stop();
  }

  const series: Array<{ name: string; size: number; cold: number[]; warm: number[] }> = [];
  if (process.env['BENCH_SCALE_SERIES'] !== '0') {
    // BENCH_SCALE shrinks these too (a quick run).
    const sizes = [10_000, 100_000, ...(process.env['BENCH_HUGE'] === '1' ? [1_000_000] : [])].map((n) => Math.max(10, Math.round(n * scale)));
    for (const n of sizes) {
      const dir = join(work, `scale-${n}`);
      mkdirSync(dir);
      // Small files (≈ 1 KiB), as a source tree or node_modules has them.
      const fx = copyFixture(dir, `ctx${n}`, n, n * 1024);
      const s = await sampleTsbuild(c, fx, n >= 1_000_000 ? 1 : runs);
      series.push({ name: 'context files', size: n, cold: s.cold, warm: s.warm });
      console.log(`scale: ${n} files   cold ${ms(median(s.cold))}   warm ${ms(median(s.warm))}   peak RSS ${Math.max(...s.rssMiB!).toFixed(0)} MiB`);
      rmSync(dir, { recursive: true, force: true });
    }
    for (const n of [10, 50, 100]) {
      const dir = join(work, `steps-${n}`);
      mkdirSync(dir);
      const s = await sampleTsbuild(c, stepsFixture(dir, n));
      series.push({ name: 'RUN steps', size: n, cold: s.cold, warm: s.warm });
      console.log(`scale: ${n} steps   cold ${ms(median(s.cold))}   warm ${ms(median(s.warm))}`);
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const table = markdownTable(results);
  console.log(`\n${table}\n`);
  if (series.length > 0) console.log(`${scaleTable(series)}\n`);
  return { scale, runs, builds: results, scaleSeries: series, markdown: table, ...(series.length > 0 ? { scaleMarkdown: scaleTable(series) } : {}) };
}
