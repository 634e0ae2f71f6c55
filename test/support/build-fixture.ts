/**
 * A store with the example busybox base and a context dir, for tests that run real builds
 * (root, overlay mounts, namespaces), and the checks they share after a build.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { importRootfs } from '../../src/store/import.js';
import { ImageStore } from '../../src/store/store.js';

/** Why real builds cannot run here, or undefined. */
export const realBuildSkip = process.getuid?.() !== 0 ? 'needs root (overlay mounts, namespaces)' : !existsSync('/bin/busybox') ? 'needs busybox-static' : undefined;

let baseTar: Buffer | undefined;
/** The root filesystem examples/busybox-rootfs.sh makes, made once per process. */
export function exampleBusyboxTar(): Buffer {
  if (!baseTar) {
    const dir = mkdtempSync(join(tmpdir(), 'tsbuild-bb-'));
    execFileSync('bash', [new URL('../../examples/busybox-rootfs.sh', import.meta.url).pathname, join(dir, 'bb.tar')]);
    baseTar = readFileSync(join(dir, 'bb.tar'));
    rmSync(dir, { recursive: true, force: true });
  }
  return baseTar;
}

/** A temp dir (removed after the test) with a store holding busybox:latest and a context of `files`. */
export async function buildFixture(t: { after(fn: () => void): void }, files: Record<string, string>, prefix = 'tsbuild-build-'): Promise<{ root: string; ctx: string; store: ImageStore }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  const ctx = join(dir, 'ctx');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(ctx, name, '..'), { recursive: true });
    writeFileSync(join(ctx, name), content);
  }
  const store = await ImageStore.open(root);
  await importRootfs(store, Readable.from([exampleBusyboxTar()]), { reference: 'busybox:latest', platform: { os: 'linux', architecture: 'amd64' } });
  return { root, ctx, store };
}

/** How many mounts of this process's namespace name `dir`. */
export const mountsUnder = (dir: string): number => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir)).length;

/** How many layer dirs the store's overlay2 holds (the `l/` links dir aside). */
export const overlayDirs = (root: string): number => readdirSync(join(root, 'overlay2')).filter((d) => d !== 'l').length;
