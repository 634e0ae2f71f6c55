/**
 * COPY straight into the layer's upper dir, when the overlay mount would add nothing.
 *
 * A COPY whose destination does not exist in any of the image's layers only creates entries:
 * nothing is replaced, no whiteout or opaque marker can arise, and no symlink of the image is on
 * the way. Through an overlay mount every create and write also goes through overlayfs (lookups
 * in each lower, the backing-file splice), about twice the cost of the same work on the upper dir
 * itself. So the copy then runs on the upper dir, after doing what overlayfs would have done on
 * the way there: copying up the destination's existing ancestors (a directory in the upper dir
 * with the top-most layer's mode, owner and times; creating a child then updates its mtime,
 * as through the mount).
 *
 * The check is conservative: the first missing component of the destination must be absent from
 * every layer (no whiteout there either: over a whiteout overlayfs makes an opaque directory),
 * its existing ancestors must be plain directories in the merged view, and they must carry no
 * extended attributes (overlayfs would copy those up too). Otherwise the copy uses the mount.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, lchownSync, lstatSync, mkdirSync, utimesSync, type Stats } from 'node:fs';
import { lstatLayered } from './overlay.js';

/** Whether anything (entry or whiteout) is at `rel` in any layer dir. */
function presentInAnyLayer(layers: readonly string[], rel: string): boolean {
  for (const layer of layers) {
    try {
      lstatSync(layer + rel);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
    }
  }
  return false;
}

/** Whether any of `paths` has an extended attribute (getfattr prints nothing when none has). */
function anyXattrs(paths: readonly string[]): boolean {
  if (paths.length === 0) return false;
  const r = spawnSync('getfattr', ['-h', '-d', '-m', '-', '--absolute-names', '--', ...paths], { encoding: 'latin1' });
  // No getfattr, or it failed: assume there may be some.
  if (r.status !== 0 || r.error !== undefined) return true;
  return r.stdout.trim() !== '';
}

/**
 * Prepares `upperDir` for a copy that creates `targets` (clean absolute paths inside the image:
 * the destination, or the paths a copy into an existing directory creates there) without the
 * overlay mount, and returns true; returns false (having changed nothing) when the copy needs the
 * mount. `lowerDirs`: the image's layers, top-most first.
 */
export async function prepareDirectCopy(lowerDirs: readonly string[], upperDir: string, targets: readonly string[]): Promise<boolean> {
  // The existing ancestors of every target, top-down, with the entry that shows in the merged view.
  const ancestors = new Map<string, { st: Stats; hostPath: string }>();
  for (const target of targets) {
    const parts = target.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.length === 0 || parts.includes('..')) return false;
    let rel = '';
    for (const [i, part] of parts.entries()) {
      rel += `/${part}`;
      if (ancestors.has(rel)) continue;
      if (!presentInAnyLayer(lowerDirs, rel)) break;
      if (i === parts.length - 1) return false; // the target itself exists
      const found = await lstatLayered(lowerDirs, rel);
      if (found === undefined || !found.stat.isDirectory()) return false;
      ancestors.set(rel, { st: found.stat, hostPath: found.hostPath });
    }
  }
  if (anyXattrs([...ancestors.values()].map((a) => a.hostPath))) return false;
  // Parents first: the map holds each path after its parent.
  for (const [rel, a] of ancestors) {
    const at = upperDir + rel;
    mkdirSync(at, { mode: 0o700 });
    lchownSync(at, a.st.uid, a.st.gid);
    chmodSync(at, a.st.mode & 0o7777);
  }
  // After every mkdir (each changed its parent's mtime): the copied-up dirs keep the layer's times.
  for (const [rel, a] of ancestors) utimesSync(upperDir + rel, a.st.atime, a.st.mtime);
  return true;
}
