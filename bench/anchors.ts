/**
 * The other builders, on the same fixtures in the same run: Docker's classic
 * builder and BuildKit on a private dockerd (test/support/dockerd.ts: its own
 * data root, exec root, socket, stopped by pid), and Buildah when installed
 * (its own storage root under the bench's temp dir; chroot isolation: this
 * machine's hybrid cgroups stop crun).
 * Cold = nothing cached (BuildKit's cache pruned, --no-cache); warm = the same
 * build again with everything cached.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Dockerd } from '../test/support/dockerd.js';
import type { Fixture } from './fixtures.js';
import type { Sample } from './stats.js';

export interface Anchor {
  name: string;
  /** One build; `cold` clears the builder's cache first, then calls `settle` (neither timed). Returns wall ms. */
  build(fx: Fixture, cold: boolean, settle?: () => Promise<void>): Promise<number>;
  /** An untimed build of `context` without the cache: reads the builder's code (programs, runtime) back in after a cache drop. */
  warmUp(context: string): Promise<void>;
}

export function dockerAnchors(d: Dockerd): Anchor[] {
  const make = (name: string, env: Record<string, string>, extra: string[]): Anchor => {
    const build = async (what: string, tag: string, context: string, noCache: boolean, timeoutMs: number): Promise<void> => {
      const r = await d.docker(['build', ...extra, ...(noCache ? ['--no-cache'] : []), '-q', '-t', tag, context], { env, timeoutMs });
      if (r.code !== 0) throw new Error(`${name} ${what} failed: ${r.stderr.trim().slice(-1000)}`);
    };
    return {
      name,
      async build(fx, cold, settle) {
        if (cold && env['DOCKER_BUILDKIT'] === '1') await d.docker(['builder', 'prune', '-af'], { env });
        if (cold) await settle?.();
        const t0 = performance.now();
        await build(`build of ${fx.name}`, `bench-${fx.name}`, fx.context, cold, 1_800_000);
        return performance.now() - t0;
      },
      warmUp: (context) => build('warm-up build', 'bench-warm-up', context, true, 600_000),
    };
  };
  return [make('docker classic', { DOCKER_BUILDKIT: '0' }, []), make('buildkit', { DOCKER_BUILDKIT: '1' }, ['--network=host'])];
}

const BUILDAH = ['/usr/bin/buildah', '/usr/local/bin/buildah'].find((p) => existsSync(p));

export function buildahAvailable(): boolean {
  return BUILDAH !== undefined && process.getuid?.() === 0;
}

function run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c ?? 1, stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/**
 * Buildah with private storage; the base image is pulled from a docker-archive
 * (`tsbuild save` of the same busybox image the others use). Removed by `dispose`.
 */
export async function buildahAnchor(work: string, baseArchive: string): Promise<Anchor & { dispose(): Promise<void> }> {
  const bin = BUILDAH as string;
  const root = join(work, 'buildah-root');
  const runroot = join(work, 'buildah-run');
  mkdirSync(root, { recursive: true });
  mkdirSync(runroot, { recursive: true });
  const g = ['--root', root, '--runroot', runroot, '--storage-driver', 'overlay'];
  const bud = async (what: string, tag: string, context: string, noCache: boolean): Promise<void> => {
    const r = await run(bin, [...g, 'bud', '--layers', '--pull=never', '--isolation=chroot', '--network=host', '--quiet', ...(noCache ? ['--no-cache'] : []), '-t', tag, context]);
    if (r.code !== 0) throw new Error(`buildah ${what} failed: ${r.stderr.trim().slice(-1000)}`);
  };
  const pulled = await run(bin, [...g, 'pull', '--quiet', `docker-archive:${baseArchive}`]);
  if (pulled.code !== 0) throw new Error(`buildah pull failed: ${pulled.stderr.trim()}`);
  return {
    name: 'buildah',
    async build(fx, cold, settle) {
      if (cold) await settle?.();
      const t0 = performance.now();
      await bud(`build of ${fx.name}`, `bench-${fx.name}`, fx.context, cold);
      return performance.now() - t0;
    },
    warmUp: (context) => bud('warm-up build', 'bench-warm-up', context, true),
    async dispose() {
      // Buildah leaves overlay mounts under its root; unmount them before removing it.
      await run(bin, [...g, 'rm', '--all']);
      await run(bin, [...g, 'rmi', '--all', '--force']);
      try {
        execFileSync('sh', ['-c', 'grep -o " $1[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l', 'sh', root], { stdio: 'ignore' });
      } catch {
        /* nothing mounted */
      }
    },
  };
}

/** `runs` cold builds, each followed by a warm one. */
export async function sampleAnchor(a: Anchor, fx: Fixture, runs: number, settle?: () => Promise<void>): Promise<Sample> {
  const s: Sample = { cold: [], warm: [] };
  for (let i = 0; i < runs; i++) {
    s.cold.push(await a.build(fx, true, settle));
    s.warm.push(await a.build(fx, false));
  }
  return s;
}
