/**
 * The copy snapshotter, for hosts where overlay cannot be mounted (e.g. the store on a filesystem
 * overlay refuses as upper dir, or a kernel without overlay): a step's rootfs is a plain directory
 * holding a full copy of the image (each layer's diff dir applied in order: whiteouts delete, opaque
 * dirs clear; see copy-apply.ts), plus the init layer for a RUN. The step runs on that directory
 * (RootfsSpec.plainDir: the sandboxes bind-mount it), then a tree diff against the state before the
 * step (copy-diff.ts) writes the layer into the store's diff dir as an overlay upper dir would hold
 * it — so writeLayer, the store and everything after are unchanged, and both snapshotters give the
 * same layers (the differential test in test/snapshot/copy-build.test.ts).
 *
 * Selection: `TSBUILD_SNAPSHOTTER=copy|overlay`, else overlay when an overlay mount works in the
 * store's scratch dir (probed once per process and dir, in a private mount namespace; a positive
 * answer is remembered in the store for the rest of the boot).
 */
import { spawn } from 'node:child_process';
import { chmod, lchown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TsbuildError } from '../errors.js';
import { applyLayer } from './copy-apply.js';
import { takeManifest, type TreeDiffStats, writeTreeDiff } from './copy-diff.js';
import { createInitLayer, featureOptions, overlayMountData } from './overlay.js';
import { rememberedOverlayWorks, rememberOverlayWorks, verdictKey } from './overlay-verdict.js';

export interface CopySnapshot {
  /** The plain rootfs dir (root-owned, 0755). */
  dir: string;
  /** Write what changed in `dir` since it was prepared into `upperDir` (empty), as an overlay upper dir. */
  diff(upperDir: string): Promise<TreeDiffStats>;
  /** Remove the copy. */
  dispose(): Promise<void>;
}

export interface CopySnapshotOptions {
  /** Where the copy goes (the store's scratch dir). */
  tmpDir: string;
  /**
   * Apply the init layer (moby's `<id>-init`, made as for an overlay RUN) on top, so that its mount
   * points are part of the baseline and never show up in the diff. For RUN steps.
   */
  init?: boolean;
}

/** A plain copy of the image whose layer dirs are `lowerDirs` (top-most first). */
export async function prepareCopySnapshot(lowerDirs: readonly string[], opts: CopySnapshotOptions): Promise<CopySnapshot> {
  const base = await mkdtemp(join(opts.tmpDir, 'copy-'));
  const dir = join(base, 'rootfs');
  const dispose = () => rm(base, { recursive: true, force: true });
  try {
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    if (process.getuid?.() === 0) await lchown(dir, 0, 0);
    for (const layer of [...lowerDirs].reverse()) await applyLayer(layer, dir);
    if (opts.init) {
      const initDir = join(base, 'init');
      await createInitLayer(initDir, { lowerDirs: [...lowerDirs] });
      await applyLayer(initDir, dir);
      await rm(initDir, { recursive: true, force: true });
    }
    const manifest = await takeManifest(dir);
    return { dir, diff: (upperDir) => writeTreeDiff(dir, manifest, upperDir), dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}

export type SnapshotterKind = 'overlay' | 'copy';

/** TSBUILD_SNAPSHOTTER: 'overlay', 'copy', or unset/'auto' (undefined: probe). */
export function snapshotterFromEnv(env: NodeJS.ProcessEnv = process.env): SnapshotterKind | undefined {
  const v = env['TSBUILD_SNAPSHOTTER'];
  if (v === undefined || v === '' || v === 'auto') return undefined;
  if (v === 'overlay' || v === 'copy') return v;
  throw new TsbuildError('USAGE', `TSBUILD_SNAPSHOTTER must be overlay, copy or auto, not ${JSON.stringify(v)}`);
}

const probes = new Map<string, Promise<boolean>>();

/**
 * Whether an overlay with the options the sandbox uses can be mounted with its layers in `tmpDir`
 * (in a private mount namespace: nothing reaches the host mount table). Cached per process and dir.
 */
export function overlayWorks(tmpDir: string): Promise<boolean> {
  let p = probes.get(tmpDir);
  if (p === undefined) {
    p = probeOverlay(tmpDir);
    probes.set(tmpDir, p);
  }
  return p;
}

async function probeOverlay(tmpDir: string): Promise<boolean> {
  const base = await mkdtemp(join(tmpDir, 'overlay-probe-'));
  try {
    const d = (n: string) => join(base, n);
    await Promise.all(['init', 'lower', 'upper', 'work', 'merged'].map((n) => mkdir(d(n))));
    let ovl: ReturnType<typeof overlayMountData>;
    try {
      ovl = overlayMountData(d('init'), { lowerDirs: [d('lower')], upperDir: d('upper'), workDir: d('work') });
    } catch {
      return false; // e.g. a ',' or ':' in the store's path: overlay options cannot name it
    }
    return await new Promise<boolean>((resolve) => {
      const child = spawn('/usr/bin/unshare', ['--mount', '--propagation', 'private', '--', '/usr/bin/mount', '-t', 'overlay', '-o', ovl.data, 'overlay', d('merged')], {
        stdio: 'ignore',
        ...(ovl.cwd !== undefined ? { cwd: ovl.cwd } : {}),
      });
      child.on('error', () => resolve(false));
      child.on('close', (code) => resolve(code === 0));
    });
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/**
 * The snapshotter for a build: `explicit`, else TSBUILD_SNAPSHOTTER, else overlay if it mounts, else
 * copy. With `verdictFile`, a positive probe is remembered there for this boot (overlay-verdict.ts).
 */
export async function chooseSnapshotter(tmpDir: string, explicit?: SnapshotterKind, env: NodeJS.ProcessEnv = process.env, verdictFile?: string): Promise<SnapshotterKind> {
  const chosen = explicit ?? snapshotterFromEnv(env);
  if (chosen !== undefined) return chosen;
  const key = verdictFile !== undefined ? verdictKey(tmpDir, featureOptions()) : undefined;
  if (key !== undefined && rememberedOverlayWorks(verdictFile as string, key)) return 'overlay';
  const works = await overlayWorks(tmpDir);
  if (works && key !== undefined) await rememberOverlayWorks(verdictFile as string, key);
  return works ? 'overlay' : 'copy';
}
