/**
 * The tree diff of the copy snapshotter: what a RUN (or COPY, WORKDIR) changed in a plain rootfs
 * dir, written as an overlay upper dir — the layer format the rest of the pipeline reads:
 *
 * - a new entry, or one whose inode changed (ctime: content, mode, owner, times, xattrs, links) →
 *   copied, with every parent dir (their attributes as they are now, like overlay's copy-up);
 * - a path that existed before and is gone → a 0/0 char device whiteout (only the top-most one;
 *   all of them hard links to one inode, as overlay makes them);
 * - a directory that is new where something existed before (removed and re-created, or a file
 *   replaced by a dir: told apart by its inode number and birth time) → copied whole, with overlay's
 *   opaque xattr, as overlay marks a dir made over a whiteout.
 *
 * The baseline is a manifest (inode, ctime, birth time, type per path) taken right after the
 * snapshot was prepared, so nothing is read twice. The prepared copy has no hard links between
 * image files (copy-apply.ts), so changing or unlinking one name never touches another, as with
 * overlay; links the step makes are kept. Known difference from overlay: a file opened for writing
 * but left unchanged (same inode, no ctime change) is copied up by overlay, not here. Sockets are
 * left out (the layer writer skips them anyway).
 */
import type { BigIntStats } from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import { link, lstat, mkdir } from 'node:fs/promises';
import { makeNodes, writeXattrs } from '../layer/host-tools.js';
import { copyEntries, hostPath, joinRel, readdirRel, type RelPath } from './copy-apply.js';
import { opaqueXattr } from './overlay-xattrs.js';

export interface EntryId {
  /** st_mode & S_IFMT */
  kind: number;
  ino: bigint;
  ctime: bigint;
  btime: bigint;
}

export interface Manifest {
  entries: Map<RelPath, EntryId>;
  /** Names in each directory (sorted). */
  children: Map<RelPath, string[]>;
}

export interface TreeDiffStats {
  /** Entries copied into the upper dir (including parent dirs). */
  copied: number;
  whiteouts: number;
  opaque: number;
}

const S_IFMT = BigInt(fsConstants.S_IFMT);

function idOf(st: BigIntStats): EntryId {
  return { kind: Number(st.mode & S_IFMT), ino: st.ino, ctime: st.ctimeNs, btime: st.birthtimeNs };
}

async function statAll(root: string, rel: RelPath, names: string[]): Promise<BigIntStats[]> {
  const out: BigIntStats[] = [];
  // Bounded parallelism: a directory may hold many thousands of entries.
  for (let i = 0; i < names.length; i += 256) {
    out.push(...(await Promise.all(names.slice(i, i + 256).map((n) => lstat(hostPath(root, joinRel(rel, n)), { bigint: true })))));
  }
  return out;
}

/** Identity of every entry under `root` (not following symlinks). */
export async function takeManifest(root: string): Promise<Manifest> {
  const entries = new Map<RelPath, EntryId>();
  const children = new Map<RelPath, string[]>();
  const walk = async (rel: RelPath): Promise<void> => {
    const names = await readdirRel(root, rel);
    children.set(rel, names);
    const stats = await statAll(root, rel, names);
    for (const [i, name] of names.entries()) {
      const st = stats[i] as BigIntStats;
      const r = joinRel(rel, name);
      entries.set(r, idOf(st));
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return { entries, children };
}

function parentOf(rel: RelPath): RelPath {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** Compare `root` with its manifest; write the changes into `upperDir` (an empty dir) as an overlay upper layer. */
export async function writeTreeDiff(root: string, manifest: Manifest, upperDir: string): Promise<TreeDiffStats> {
  const copy = new Set<RelPath>();
  const whiteouts: RelPath[] = [];
  const opaque: RelPath[] = [];
  const emit = (rel: RelPath) => {
    for (let p = rel; p !== '' && !copy.has(p); p = parentOf(p)) copy.add(p);
  };
  const walk = async (rel: RelPath, fresh: boolean): Promise<void> => {
    const names = await readdirRel(root, rel);
    if (!fresh) {
      const now = new Set(names);
      for (const n of manifest.children.get(rel) ?? []) {
        if (now.has(n)) continue;
        whiteouts.push(joinRel(rel, n));
        if (rel !== '') emit(rel);
      }
    }
    const stats = await statAll(root, rel, names);
    for (const [i, name] of names.entries()) {
      const st = stats[i] as BigIntStats;
      if (st.isSocket()) continue;
      const r = joinRel(rel, name);
      const now = idOf(st);
      const before = fresh ? undefined : manifest.entries.get(r);
      const isNew = before === undefined || before.kind !== now.kind || before.ino !== now.ino || before.btime !== now.btime;
      if (st.isDirectory()) {
        if (isNew) {
          emit(r);
          if (before !== undefined) opaque.push(r);
          await walk(r, true);
        } else {
          if (before.ctime !== now.ctime) emit(r);
          await walk(r, false);
        }
      } else if (isNew || before.ctime !== now.ctime) {
        emit(r);
      }
    }
  };
  await walk('', false);

  // Whiteouts first (their parents as placeholders): the copy then gives every dir its attributes
  // and times, after its contents are in place. The opaque xattr last (it changes no mtime).
  for (const w of whiteouts) {
    const parent = parentOf(w);
    if (parent !== '') await mkdir(hostPath(upperDir, parent), { recursive: true, mode: 0o755 });
  }
  // overlay (Linux >= 5.8) makes every whiteout of a mount a hard link to one shared inode, and the
  // layer writer turns the later ones into tar hard links: do the same.
  const [first, ...rest] = whiteouts;
  if (first !== undefined) {
    await makeNodes([{ path: hostPath(upperDir, first), kind: 'c', major: 0, minor: 0 }]);
    for (const w of rest) await link(hostPath(upperDir, first), hostPath(upperDir, w));
  }
  await copyEntries(root, upperDir, [...copy].sort());
  await writeXattrs(opaque.map((o) => ({ path: hostPath(upperDir, o), name: opaqueXattr(), value: Buffer.from('y') })));
  return { copied: copy.size, whiteouts: whiteouts.length, opaque: opaque.length };
}
