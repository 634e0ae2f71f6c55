/**
 * Perform a resolved COPY/ADD (context/sources.ts) into a target root directory, with docker 20.10
 * classic-builder semantics (moby builder/dockerfile copy.go, copy_unix.go, containerfs archiver):
 *
 * File source: the destination is `<dest>/<base name>` when `dest` ends in `/` or is an existing
 * directory (symlinks followed inside the rootfs), else `dest`. Missing parent directories are
 * created 0755 owned by the identity. The file (a symlink source is copied as its target, named
 * after the link) is written with the source's permission bits and mtime, replacing whatever was
 * at that path, then chowned to the identity.
 *
 * Directory source: its contents are copied into `dest`, which is created 0755 root:root (missing
 * parents too) when absent. Entries keep mode and mtime; symlinks stay symlinks; hard links
 * between files of the source stay hard links; an existing path is replaced unless both are
 * directories (an existing directory then takes the source directory's mode, owner and mtime).
 * Then every copied entry, and `dest` itself only if the copy created it, is chowned to the
 * identity (lchown: as in Docker, the kernel drops setuid/setgid bits and file capabilities).
 * A directory source onto an existing file fails (`mkdir <dest>: not a directory`).
 *
 * ADD: a local tar archive (plain, gzip, bzip2, xz) is extracted into `dest` (copy-archive.ts),
 * without chown; anything else is copied like COPY. URLs are not supported yet.
 *
 * BuildKit flags: `--exclude` leaves out what the plan's filter excludes (an excluded directory
 * that an exception looks into is created only when something inside it is copied); `--parents`
 * writes each source at its exact path under the destination, creating the directories between
 * with the source directories' mode and mtime (owned by the identity); ADD `--unpack=false`
 * copies archives as files. `--link` is accepted and copies exactly like a plain COPY: the
 * layer is still made on top of the previous ones, not independently so it could be rebased.
 *
 * Identity: 0:0, or `--chown` resolved against the target's /etc/passwd and /etc/group; COPY
 * --from without --chown keeps the source owners. `--chmod` (a BuildKit flag) is applied last
 * to every copied file and directory (not symlinks), `dest` only if created.
 */
import { chmodSync, copyFileSync, constants as fsc, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, readdirSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import { chmod, copyFile, lchown, lstat, stat, utimes } from 'node:fs/promises';
import { Pacer } from '../sys/yield.js';
import { join } from 'node:path';
import { CopyError, filterVerdict, type CopyOperation, type CopyPlan, type CopySource } from '../context/sources.js';
import type { SourceEntry } from '../context/tree.js';
import { goBase, goClean } from '../layer/bytes.js';
import { makeNodes, writeXattrs } from '../layer/host-tools.js';
import { extractArchive, isTarArchive, type ArchiveOptions } from './copy-archive.js';
import { parseChmod, type ChmodFn } from './copy-chmod.js';
import { resolveChown, type Identity } from './copy-chown.js';
import { hostPathOf, mkdirAllNew, resolveInRootfs } from './copy-paths.js';
import { mapLimit } from '../context/pool.js';
import { TaskPool } from './task-pool.js';

export type { Identity } from './copy-chown.js';

export interface CopyFilesOptions extends ArchiveOptions {
  /** The target root directory (a plain directory, or an overlay-mounted rootfs). */
  rootfs: string;
  plan: CopyPlan;
  /** The identity to chown to; default: plan.chown resolved against the rootfs, else 0:0. */
  identity?: Identity;
}

export interface CopyFilesResult {
  /** The history hash (`file:`/`dir:`/`multi:`). */
  hash: string;
  /** `COPY [--chown=…]<hash> in <dest> `. */
  historyText: string;
}

const ROOT: Identity = { uid: 0, gid: 0 };

function relIn(dir: string, rel: string): string {
  return dir === '.' ? rel : rel.slice(dir.length + 1);
}

function wrapped(e: unknown, prefix: string): unknown {
  if (e instanceof CopyError) return new CopyError(e.code as never, `${prefix}${e.message}`, { cause: e });
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code === 'string') return new CopyError('COPY', `${prefix}${err.message}`, { cause: e });
  return e;
}

/** What a copy wrote, for the ownership and --chmod passes. */
interface Written {
  hostPath: string;
  entry: SourceEntry;
  /** The destination directory existed before the copy: its owner and mode are left alone. */
  keep: boolean;
  /** The owner createEntry gave it, when known. */
  owner?: Identity;
}

const RUNNING_AS_ROOT = process.getuid?.() === 0 && process.getgid?.() === 0;

/**
 * Files created at once. Creating in one directory takes its lock, so more than libuv's four
 * threads only spin on it (measured on ext4: 4 beat 1, 2 and 16).
 */
const CREATE_CONCURRENCY = 4;

/**
 * Create one entry at `path` the way Unpack's createTarFile does (chown to the header owner, xattrs, chmod, times).
 * `fresh`: the parent directory was created empty by this copy (nothing to replace, its gid not inherited).
 */
async function createEntry(path: string, e: SourceEntry, owner: Identity, hardlinkTo: string | undefined, fresh = false): Promise<void> {
  let existing;
  if (!fresh) {
    try {
      existing = lstatSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  if (existing !== undefined && !(existing.isDirectory() && e.type === 'dir')) rmSync(path, { recursive: true, force: true });
  if (hardlinkTo !== undefined) {
    linkSync(hardlinkTo, path);
  } else {
    switch (e.type) {
      case 'dir':
        if (existing === undefined || !existing.isDirectory()) mkdirSync(path, { mode: 0o700 });
        break;
      case 'file':
        // The data copy alone is asynchronous: the thread pool runs CREATE_CONCURRENCY of them at once.
        await copyFile(e.diskPath as string, path, fsc.COPYFILE_EXCL);
        break;
      case 'symlink':
        symlinkSync(e.linkTarget ?? '', path);
        break;
      case 'fifo':
      case 'char':
      case 'block':
        await makeNodes([{ path: Buffer.from(path), kind: e.type === 'fifo' ? 'p' : e.type === 'char' ? 'c' : 'b', major: e.devMajor, minor: e.devMinor }]);
        break;
    }
  }
  // A plain file root made in a fresh directory is root's already, and copyFile gave it the
  // source's mode (libuv fchmods): skip the chown and chmod that would change nothing.
  const asCopied = fresh && RUNNING_AS_ROOT && hardlinkTo === undefined && e.type === 'file' && owner.uid === 0 && owner.gid === 0 && e.capability === undefined && (e.mode & 0o7000) === 0;
  if (!asCopied) lchownSync(path, owner.uid, owner.gid);
  if (e.capability !== undefined) await writeXattrs([{ path: Buffer.from(path), name: 'security.capability', value: e.capability }], { ignoreUnsupported: true });
  if (e.type !== 'symlink' && !asCopied) chmodSync(path, e.mode);
  if (e.type === 'symlink') lutimesSync(path, e.mtime, e.mtime);
  else if (e.type !== 'dir') utimesSync(path, e.mtime, e.mtime);
}

/** The owner a source entry carries in the archive the daemon builds (context: 0:0). */
function headerOwner(src: CopySource, e: SourceEntry): Identity {
  return src.tree.kind === 'context' ? ROOT : { uid: e.uid, gid: e.gid };
}

/** copyDirectory: MkdirAllAndChownNew(dest, 0755, root) then TarUntar of the source's contents. */
async function copyDirectory(rootfs: string, src: CopySource, dest: string): Promise<Written[]> {
  const destHost = hostPathOf(rootfs, dest);
  let destStat;
  try {
    destStat = await stat(destHost);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const destExisted = destStat?.isDirectory() === true;
  if (destStat !== undefined && !destExisted) throw new CopyError('COPY', `failed to copy directory: mkdir ${dest}: not a directory`);
  if (!destExisted) {
    try {
      await mkdirAllNew(rootfs, dest, 0o755, ROOT);
    } catch (e) {
      throw wrapped(e, 'failed to copy directory: ');
    }
  }
  const rootEntry = (await src.tree.lstat(src.resolved)) as SourceEntry;
  const written: Written[] = [{ hostPath: destHost, entry: rootEntry, keep: destExisted }];
  const firstOfInode = new Map<string, string>();
  const dirs: Written[] = [];
  /** Excluded directories looked into: created (top first) once something below is copied. */
  interface Pending {
    hostPath: string;
    entry: SourceEntry;
    created: boolean;
  }
  // Files and symlinks are made in parallel (bounded); directories, hard links and their order stay sequential.
  const pool = new TaskPool(CREATE_CONCURRENCY);
  const pacer = new Pacer();
  const flush = async (pending: readonly Pending[]): Promise<void> => {
    for (const p of pending) {
      if (p.created) continue;
      await createEntry(p.hostPath, p.entry, headerOwner(src, p.entry), undefined);
      p.created = true;
      const w = { hostPath: p.hostPath, entry: p.entry, keep: false };
      written.push(w);
      dirs.push(w);
    }
  };
  const visit = async (rel: string, pending: readonly Pending[], fresh: boolean): Promise<void> => {
    for (const name of await src.tree.readdir(rel)) {
      await pacer.tick();
      const childRel = rel === '.' ? name : `${rel}/${name}`;
      const e = await src.tree.lstat(childRel);
      if (e === undefined) continue;
      const hostPath = join(destHost, relIn(src.resolved, childRel));
      const verdict = filterVerdict(src, childRel, e.type === 'dir');
      if (verdict === 'skip') continue;
      if (verdict === 'descend') {
        await visit(childRel, [...pending, { hostPath, entry: e, created: false }], false);
        continue;
      }
      await flush(pending);
      let hardlinkTo: string | undefined;
      if (e.inode !== undefined) {
        hardlinkTo = firstOfInode.get(e.inode);
        if (hardlinkTo === undefined) firstOfInode.set(e.inode, hostPath);
      }
      const w = { hostPath, entry: e, keep: false, owner: headerOwner(src, e) };
      written.push(w);
      if (e.type === 'file' || e.type === 'symlink') {
        // A hard link needs its first path on disk: wait for the files in flight.
        if (e.inode !== undefined) {
          await pool.drain();
          await createEntry(hostPath, e, headerOwner(src, e), hardlinkTo, fresh);
        } else {
          await pool.submit(() => createEntry(hostPath, e, headerOwner(src, e), hardlinkTo, fresh));
        }
        continue;
      }
      await createEntry(hostPath, e, headerOwner(src, e), hardlinkTo, fresh);
      if (e.type === 'dir') {
        dirs.push(w);
        // An empty directory (new, or one the image had empty) has nothing to replace.
        await visit(childRel, [], fresh || readdirSync(hostPath).length === 0);
      }
    }
  };
  try {
    await visit(src.resolved, [], !destExisted);
    await pool.drain();
  } catch (e) {
    await pool.settle();
    throw wrapped(e, 'failed to copy directory: ');
  }
  for (const d of dirs) utimesSync(d.hostPath, d.entry.mtime, d.entry.mtime);
  return written;
}

/** copyFile: MkdirAllAndChownNew(dir, 0755, identity) then CopyFileWithTar. */
async function copyOneFile(rootfs: string, src: CopySource, dest: string, identity: Identity): Promise<Written[]> {
  const slash = dest.lastIndexOf('/');
  const dir = slash <= 0 ? '/' : dest.slice(0, slash);
  try {
    await mkdirAllNew(rootfs, dir, 0o755, identity);
  } catch (e) {
    throw wrapped(e, 'failed to create new directory: ');
  }
  const e = (await src.tree.lstat(src.resolved)) as SourceEntry;
  const destHost = hostPathOf(rootfs, dest);
  // CopyFileWithTar writes a plain header for the file (no hard links), named after dest.
  const entry: SourceEntry = { ...e };
  delete entry.inode;
  try {
    await createEntry(destHost, entry, headerOwner(src, e), undefined);
  } catch (err) {
    throw wrapped(err, 'failed to copy file: ');
  }
  return [{ hostPath: destHost, entry, keep: false }];
}

/** --parents: the directories between the destination and the source, created when missing. */
async function makeParentDirs(rootfs: string, src: CopySource, op: CopyOperation, identity: Identity | undefined, late: Written[]): Promise<Written[]> {
  const written: Written[] = [];
  for (const p of op.parentDirs ?? []) {
    const at = await resolveInRootfs(rootfs, p.dest);
    let st;
    try {
      st = await lstat(at.hostPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st !== undefined) {
      if (!st.isDirectory()) throw new CopyError('COPY', `failed to copy directory: mkdir ${p.dest}: not a directory`);
      continue;
    }
    const parent = at.path.slice(0, Math.max(1, at.path.lastIndexOf('/')));
    await mkdirAllNew(rootfs, parent, 0o755, identity ?? ROOT);
    const entry: SourceEntry = { ...p.entry };
    delete entry.capability;
    await createEntry(at.hostPath, entry, identity ?? headerOwner(src, entry), undefined);
    const w = { hostPath: at.hostPath, entry, keep: false };
    written.push(w);
    late.push(w);
  }
  return written;
}

/** performCopyForInfo. */
async function copyOne(opts: CopyFilesOptions, op: CopyOperation, identity: Identity | undefined, chmodFn: ChmodFn | undefined, late: Written[]): Promise<void> {
  const { rootfs, plan } = opts;
  const src = op.source;
  const destIn = op.dest;
  const parentsWritten = op.parentDirs !== undefined ? await makeParentDirs(rootfs, src, op, identity, late) : [];
  const dest = await resolveInRootfs(rootfs, destIn);
  let written: Written[];
  if (op.parentDirs !== undefined && src.type !== 'dir') {
    // --parents: the file's exact path.
    written = await copyOneFile(rootfs, src, dest.path, identity ?? ROOT);
  } else if (src.type === 'dir') {
    written = await copyDirectory(rootfs, src, dest.path);
  } else if (plan.decompress && src.type === 'file' && src.tree.kind === 'context' && (await isTarArchive(join(src.tree.root, src.resolved), opts))) {
    try {
      await extractArchive(join(src.tree.root, src.resolved), rootfs, dest.path, opts);
    } catch (e) {
      throw wrapped(e, '');
    }
    return;
  } else {
    let target = dest.path;
    let isDir = false;
    try {
      isDir = (await stat(dest.hostPath)).isDirectory();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
    }
    if (destIn.endsWith('/') || isDir) target = goClean(`${dest.path}/${goBase(src.path)}`);
    written = await copyOneFile(rootfs, src, target, identity ?? ROOT);
  }
  written.push(...parentsWritten);
  if (identity !== undefined) {
    // fixPermissions: walk the source, chown what was copied (dest itself only if created). An
    // entry that has that owner already and no setuid/setgid bits or capability to lose would not change.
    const noop = (w: Written) => w.owner !== undefined && w.owner.uid === identity.uid && w.owner.gid === identity.gid && (w.entry.mode & 0o6000) === 0 && w.entry.capability === undefined;
    await mapLimit(
      written.filter((w) => !w.keep && !noop(w)),
      CREATE_CONCURRENCY,
      (w) => lchown(w.hostPath, identity.uid, identity.gid),
    );
  }
  if (chmodFn !== undefined) {
    for (const w of written) {
      if (w.keep || w.entry.type === 'symlink') continue;
      const st = await lstat(w.hostPath);
      if (st.isSymbolicLink()) continue;
      await chmod(w.hostPath, chmodFn(st.mode & 0o7777, st.isDirectory()));
    }
  }
}

/**
 * Copy the plan's sources into `rootfs`. Errors read like Docker's (`failed to copy files: …`).
 * Returns the hash and history text for the step's history entry.
 */
export async function copyFiles(opts: CopyFilesOptions): Promise<CopyFilesResult> {
  const { plan, rootfs } = opts;
  let identity: Identity | undefined;
  if (!plan.preserveOwnership) identity = opts.identity ?? (plan.chown !== undefined ? await resolveChown(plan.chown, rootfs, plan.chownPrimaryGroup === true) : ROOT);
  const chmodFn = plan.chmod !== undefined ? parseChmod(plan.chmod) : undefined;
  // Directories made for --parents get their mtimes once every source is in.
  const late: Written[] = [];
  for (const op of plan.operations) {
    try {
      await copyOne(opts, op, identity, chmodFn, late);
    } catch (e) {
      throw wrapped(e, 'failed to copy files: ');
    }
  }
  for (const w of late) await utimes(w.hostPath, w.entry.mtime, w.entry.mtime);
  return { hash: plan.hash, historyText: plan.historyText };
}
