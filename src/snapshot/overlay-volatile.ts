/**
 * Unmounting an overlay syncs its whole upper filesystem (≈ 0.4 s after a RUN that wrote
 * 512 MB), at a point where nothing else can run. A step's writable overlay is mounted
 * `volatile` instead (Linux ≥ 5.10: no sync at unmount), and the build syncs the filesystem
 * once per layer itself (syncLayerData), while it hashes the layer, before registering it:
 * the layer's data is on disk before anything names it, as before, at no cost in time.
 */
import { spawn } from 'node:child_process';
import { release } from 'node:os';
import { join } from 'node:path';
import { readdir, rm } from 'node:fs/promises';

let supported: boolean | undefined;

/** `volatile` where the kernel has it, for a mount whose work dir is fresh (see dropVolatileMarker). */
export function overlayVolatileOption(): string[] {
  if (supported === undefined) {
    const [major = 0, minor = 0] = release().split('.').map((n) => Number.parseInt(n, 10));
    supported = major > 5 || (major === 5 && minor >= 10);
  }
  return supported ? ['volatile'] : [];
}

/**
 * A volatile mount leaves `<workdir>/work/incompat/volatile` (the kernel then refuses that work
 * dir: dockerd's mount of the layer fails with EINVAL) and, unmounted without its clean-up, the
 * temp entries of whiteouts. The layer dir's `work/work` is left empty, as dockerd leaves it.
 */
export async function dropVolatileMarker(workDir: string): Promise<void> {
  const inner = join(workDir, 'work');
  const names = await readdir(inner).catch(() => [] as string[]);
  await Promise.all(names.map((n) => rm(join(inner, n), { recursive: true, force: true })));
}

/** syncfs(2) of the filesystem holding `path` (coreutils `sync -f`); a failure is an error. */
export function syncLayerData(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/sync', ['-f', path], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`sync -f ${path} failed: ${err.trim() || `exit ${code}`}`))));
  });
}
