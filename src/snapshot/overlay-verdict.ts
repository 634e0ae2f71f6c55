/**
 * A remembered "overlay mounts here" from an earlier build, so that each build does not pay for
 * the probe (an unshare + mount + teardown, ≈ 15 ms of a 300 ms cold build). dockerd probes once
 * at daemon start; a daemonless builder keeps the answer in the store instead.
 *
 * Only a positive verdict is kept, and only for the same boot (the kernel and its overlay module
 * cannot change without a reboot that keeps the module loaded), the same filesystem under the
 * store's scratch dir at the same path, the same user and the same mount options: anything else
 * probes again.
 * A negative verdict is never kept, so an overlay that starts to work (a module loaded later) is
 * picked up by the next build.
 */
import { readFileSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../store/fsutil.js';

/** Where a store keeps its verdict (dockerd ignores tsbuild-meta/). */
export function overlayVerdictFile(root: string): string {
  return join(root, 'tsbuild-meta', 'overlay-probe.json');
}

export interface VerdictKey {
  bootId: string;
  /** st_dev of the scratch dir: the filesystem the layers live on. */
  dev: number;
  /** The scratch dir's parent (a build's scratch dir is per process): a moved store probes again. */
  under: string;
  uid: number;
  /** The feature options of the mount (no paths). */
  options: string;
}

/** The key for `tmpDir` on this boot, or undefined when the boot cannot be told apart. */
export function verdictKey(tmpDir: string, options: string): VerdictKey | undefined {
  let bootId: string;
  try {
    bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
  if (bootId === '') return undefined;
  return { bootId, dev: statSync(tmpDir).dev, under: dirname(resolve(tmpDir)), uid: process.getuid?.() ?? -1, options };
}

/** Whether `file` holds a positive verdict for `key`. */
export function rememberedOverlayWorks(file: string, key: VerdictKey): boolean {
  let saved: unknown;
  try {
    saved = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return false; // missing or torn: probe again
  }
  if (typeof saved !== 'object' || saved === null) return false;
  const s = saved as Record<string, unknown>;
  return s['works'] === true && s['bootId'] === key.bootId && s['dev'] === key.dev && s['under'] === key.under && s['uid'] === key.uid && s['options'] === key.options;
}

/** Remember that overlay works for `key` (best effort: a store we cannot write just probes again). */
export async function rememberOverlayWorks(file: string, key: VerdictKey): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, JSON.stringify({ ...key, works: true }) + '\n', 0o600);
  } catch {
    // Not writable: the next build probes again.
  }
}
