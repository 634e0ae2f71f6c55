/**
 * Shared helpers for the reliability tests: the CLI compiled once per test process
 * into node_modules/.cache (so a spawned build starts in ~0.2 s and a random kill lands
 * in real work, not in the TypeScript loader), a busybox base, and checks that no
 * process or mount is left behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxRootfsTar } from '../support/dockerd.js';

export const REPO = resolve(fileURLToPath(import.meta.url), '../../..');

/** Why these tests cannot run here, or undefined. */
export function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (RUN sandboxes, overlay mounts)';
  if (!existsSync('/usr/bin/unshare')) return 'needs util-linux unshare';
  if (!existsSync('/bin/busybox')) return 'needs busybox-static';
  return undefined;
}

let compiled: string | undefined;
/** The CLI entry point, compiled from the current sources. */
export function cliEntry(): string {
  if (compiled) return compiled;
  // One copy per test process: test files run in parallel and must not share a half-written one.
  const out = join(REPO, 'node_modules', '.cache', 'tsbuild-reliability', String(process.pid));
  mkdirSync(out, { recursive: true });
  process.once('exit', () => rmSync(out, { recursive: true, force: true }));
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  try {
    execFileSync(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO, 'tsconfig.build.json'), '--outDir', join(out, 'dist')], { stdio: 'pipe' });
  } catch (e) {
    // Type errors still emit JavaScript; only a missing entry point is fatal.
    if (!existsSync(join(out, 'dist', 'cli', 'main.js'))) throw e;
    process.stderr.write(`reliability tests: tsc reported errors:\n${String((e as { stdout?: Buffer }).stdout ?? '')}`);
  }
  writeFileSync(join(out, 'cli.js'), "import { main } from './dist/cli/main.js';\nprocess.exitCode = await main(process.argv);\n");
  return (compiled = join(out, 'cli.js'));
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function spawnCli(args: string[], opts: { input?: Buffer; cwd?: string; env?: NodeJS.ProcessEnv } = {}): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [cliEntry(), ...args], { stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd ?? REPO, ...(opts.env ? { env: opts.env } : {}) });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(opts.input);
  const done = new Promise<Run>((res) => child.on('close', (code, signal) => res({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') })));
  return { child, done };
}

export function cli(args: string[], opts: { input?: Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return spawnCli(args, opts).done;
}

/** A store with `bb:latest` (busybox) imported. */
export async function storeWithBusybox(root: string): Promise<void> {
  const tar = join(root + '-busybox.tar');
  writeFileSync(tar, busyboxRootfsTar());
  const r = await cli(['import', '--root', root, tar, 'bb:latest']);
  if (r.code !== 0) throw new Error(`import failed: ${r.stderr}`);
}

/** Processes whose environment, arguments or mounts mention `path`. */
export function processesUsing(path: string): string[] {
  const needle = Buffer.from(path);
  const out: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      const texts = [readFileSync(`/proc/${name}/environ`), readFileSync(`/proc/${name}/cmdline`), readFileSync(`/proc/${name}/mountinfo`)];
      if (texts.some((t) => t.includes(needle))) out.push(`${name}: ${readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 200)}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Host mounts under `path`. */
export function mountsUnder(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(path));
}

/** repositories.json as ref → image ID. */
export function tagsOf(root: string): Map<string, string> {
  const doc = JSON.parse(readFileSync(join(root, 'image', 'overlay2', 'repositories.json'), 'utf8')) as { Repositories: Record<string, Record<string, string>> };
  return new Map(Object.values(doc.Repositories).flatMap((r) => Object.entries(r)));
}

export function configOf(root: string, id: string): { rootfs: { diff_ids: string[] } } {
  return JSON.parse(readFileSync(join(root, 'image', 'overlay2', 'imagedb', 'content', 'sha256', id.replace(/^sha256:/, '')), 'utf8')) as { rootfs: { diff_ids: string[] } };
}
