/**
 * tsbuild as users run it: the compiled, bundled CLI in a child process, so node's
 * start-up and module loading count, and the peak RSS can be read. The sources
 * are compiled into a private directory (node_modules/.cache, gitignored) so the
 * bench never races other work on dist/.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const REPO = new URL('..', import.meta.url).pathname;
const OUT = join(REPO, 'node_modules/.cache/tsbuild-bench');

export interface CliRun {
  ms: number;
  /** Largest RSS in the process tree (GNU time), in MiB; 0 without /usr/bin/time. */
  rssMiB: number;
}

/** Compiles and bundles src/ into the private dir, with a copy of bin/tsbuild (the sh launcher users run). */
export function compileCli(): string {
  mkdirSync(OUT, { recursive: true });
  // tsc emits even with type errors; a tree mid-edit still benches (with a warning).
  const tsc = spawnSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.build.json'), '--outDir', join(OUT, 'dist')], { stdio: 'inherit' });
  if (tsc.status !== 0) console.log(`bench: tsc exited ${tsc.status}; benching what it emitted`);
  if (!existsSync(join(OUT, 'dist/cli/launch.cjs'))) throw new Error('bench: the CLI did not compile');
  // One file, as `npm run build` makes it for bin/tsbuild; a stale code cache would only be replaced.
  const bundle = spawnSync(process.execPath, [join(REPO, 'scripts/bundle.mjs'), join(OUT, 'dist')], { stdio: 'inherit', cwd: REPO });
  if (bundle.status !== 0) throw new Error('bench: bundling the CLI failed');
  rmSync(join(OUT, 'dist/cli/tsbuild.cjs.v8cache'), { force: true });
  mkdirSync(join(OUT, 'bin'), { recursive: true });
  const launcher = join(OUT, 'bin/tsbuild');
  writeFileSync(launcher, readFileSync(join(REPO, 'bin/tsbuild')), { mode: 0o755 });
  return launcher;
}

const GNU_TIME = '/usr/bin/time';

/** Runs `tsbuild ARGS…`; throws with its stderr when it fails. */
export async function runCli(launcher: string, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const tree = join(OUT, `time-${process.pid}`);
  rmSync(tree, { force: true });
  const useTime = existsSync(GNU_TIME);
  const cmd = useTime ? GNU_TIME : launcher;
  const argv = useTime ? ['-f', '%M', '-o', tree, launcher, ...args] : args;
  const t0 = performance.now();
  const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    const err: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c ?? 1, stderr: Buffer.concat(err).toString('utf8') }));
  });
  const elapsed = performance.now() - t0;
  if (code !== 0) throw new Error(`tsbuild ${args.join(' ')} failed (${code}): ${stderr.trim().slice(-2000)}`);
  // Without GNU time (Debian package time) no RSS: 0, printed as such.
  const kib = useTime && existsSync(tree) ? Number(readFileSync(tree, 'utf8').trim().split('\n').pop()) : 0;
  rmSync(tree, { force: true });
  return { ms: elapsed, rssMiB: kib / 1024 };
}
