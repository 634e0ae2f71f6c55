/**
 * Overlay snapshots: the Docker-style init layer, overlay mount options, and read access to a
 * file through a stack of layer dirs without mounting anything.
 *
 * The init layer is moby's `<id>-init` layer (daemon/initlayer/setup_unix.go `Setup`): the mount
 * points a container needs (/dev/pts, /dev/shm, /proc, /sys as dirs; /.dockerenv, /etc/resolv.conf,
 * /etc/hosts, /etc/hostname, /dev/console as empty files; /etc/mtab → /proc/mounts). It sits
 * between the image's layers and the RUN's upper dir, so that binding /etc/hosts or mounting /proc
 * over the merged tree never copies anything up: the upper dir holds only the command's changes.
 */
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, lchownSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { TsbuildError } from '../errors.js';
import type { RootfsSpec } from './types.js';
import { overlayVolatileOption } from './overlay-volatile.js';
import { opaqueXattr, overlayXattrOption } from './overlay-xattrs.js';

export class SnapshotError extends TsbuildError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'SNAPSHOT', message, options);
  }
}

export type InitEntry =
  | { path: string; type: 'dir' }
  | { path: string; type: 'file' }
  | { path: string; type: 'symlink'; target: string };

/** moby daemon/initlayer/setup_unix.go, in a fixed order (Go ranges over a map). */
export const INIT_LAYER_ENTRIES: readonly InitEntry[] = [
  { path: '/dev/pts', type: 'dir' },
  { path: '/dev/shm', type: 'dir' },
  { path: '/proc', type: 'dir' },
  { path: '/sys', type: 'dir' },
  { path: '/.dockerenv', type: 'file' },
  { path: '/etc/resolv.conf', type: 'file' },
  { path: '/etc/hosts', type: 'file' },
  { path: '/etc/hostname', type: 'file' },
  { path: '/dev/console', type: 'file' },
  { path: '/etc/mtab', type: 'symlink', target: '/proc/mounts' },
];

export interface InitLayerOptions {
  /**
   * The image's layer dirs (top-most first). When given, every directory of the init layer that
   * also exists in the image (/etc, /dev, /proc, …) takes the image's mode, owner and times, as in
   * dockerd, where the init layer is made on top of the image and existing dirs are left alone.
   * Without it they are 0755 root:root: then a RUN that copies up /etc gets 0755 root:root for it.
   */
  lowerDirs?: string[];
}

/**
 * Create (or repair) an init layer in `dir`. Dirs are 0755 and files 0755 root:root (moby makes
 * files with os.OpenFile(..., 0755) under dockerd's 022 umask), empty; /etc/mtab is a symlink to
 * /proc/mounts. Idempotent and non-destructive: what is already right is left untouched, so a
 * layer in use as a lowerdir can be passed again; anything in the way (a file where a dir must be)
 * is replaced.
 */
export async function createInitLayer(dir: string, options: InitLayerOptions = {}): Promise<void> {
  if (!posix.isAbsolute(dir)) throw new SnapshotError(`init layer dir must be absolute: ${dir}`);
  const asRoot = process.getuid?.() === 0;
  // Synchronous calls: some 80 small ones per RUN, 2–4 µs each against 15–40 µs of main-thread
  // time (and a thread-pool round trip) for an async one.
  mkdirSync(dir, { recursive: true });
  const dirs = new Set<string>();
  for (const entry of INIT_LAYER_ENTRIES) {
    const parts = entry.path.split('/').filter((p) => p !== '');
    // parents
    for (let i = 1; i < parts.length; i++) {
      const rel = '/' + parts.slice(0, i).join('/');
      ensureDir(dir + rel, asRoot);
      dirs.add(rel);
    }
    const full = dir + entry.path;
    const st = lstatOrUndefined(full);
    switch (entry.type) {
      case 'dir':
        ensureDir(full, asRoot);
        dirs.add(entry.path);
        break;
      case 'file':
        if (st !== undefined && !st.isFile()) rmSync(full, { recursive: true, force: true });
        if (st === undefined || !st.isFile()) closeSync(openSync(full, 'a', 0o755));
        fixMode(full, 0o755, st?.isFile() ? st : undefined, asRoot);
        break;
      case 'symlink':
        if (st !== undefined && st.isSymbolicLink() && readlinkSync(full) === entry.target) break;
        if (st !== undefined) rmSync(full, { recursive: true, force: true });
        symlinkSync(entry.target, full);
        if (asRoot) lchownSync(full, 0, 0);
        break;
    }
  }
  if (options.lowerDirs !== undefined && options.lowerDirs.length > 0) {
    // Deepest first would not matter for attributes; times of parents are set after their children.
    const ordered = [...dirs].sort((a, b) => b.split('/').length - a.split('/').length);
    for (const rel of ordered) {
      const found = await lstatLayered(options.lowerDirs, rel);
      if (found === undefined || !found.stat.isDirectory()) continue;
      const s = found.stat;
      if (asRoot) lchownSync(dir + rel, s.uid, s.gid);
      chmodSync(dir + rel, s.mode & 0o7777);
      utimesSync(dir + rel, s.atime, s.mtime);
    }
  }
}

function ensureDir(path: string, asRoot: boolean): void {
  let st = lstatOrUndefined(path);
  if (st !== undefined && !st.isDirectory()) {
    rmSync(path, { force: true });
    st = undefined;
  }
  if (st === undefined) mkdirSync(path, { mode: 0o755 });
  fixMode(path, 0o755, st, asRoot);
}

function fixMode(path: string, mode: number, st: Stats | undefined, asRoot: boolean): void {
  if (st === undefined || (st.mode & 0o7777) !== mode) chmodSync(path, mode);
  if (asRoot && (st === undefined || st.uid !== 0 || st.gid !== 0)) lchownSync(path, 0, 0);
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** An overlay whiteout: a character device 0/0. */
export function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

// ---------------------------------------------------------------------------------------------
// Mount options

/** The kernel refuses mount data longer than a page minus the terminating NUL. */
const MOUNT_DATA_MAX = 4095;

let featureCache: string | undefined;

/**
 * `index=off` when the kernel knows the option (what dockerd's overlay2 driver adds), plus
 * `redirect_dir=off` and `metacopy=off` where known, so that the upper dir is always a plain layer
 * (a renamed lower dir is copied, a chown copies the data): dockerd falls back to its naive diff
 * when those features are on; tsbuild reads the upper dir directly and needs them off.
 * Without the layer paths, these options are also the key of a remembered probe (overlay-verdict.ts).
 */
export function featureOptions(): string {
  if (featureCache === undefined) {
    const opts: string[] = [...overlayXattrOption()];
    // With userxattr (in a user namespace) the kernel wants redirect_dir=nofollow: `off` means
    // "follow" while redirect_always_follow is set, which it refuses there.
    const userxattr = opts.length > 0;
    for (const p of ['index', 'redirect_dir', 'metacopy']) {
      if (existsSync(`/sys/module/overlay/parameters/${p}`)) opts.push(`${p}=${p === 'redirect_dir' && userxattr ? 'nofollow' : 'off'}`);
    }
    // No sync of the whole filesystem at unmount: the build syncs once while it hashes the layer.
    opts.push(...overlayVolatileOption());
    featureCache = opts.join(',');
  }
  return featureCache;
}

export interface OverlayMount {
  /** The `-o` data for `mount -t overlay overlay -o <data> <target>`. */
  data: string;
  /**
   * Set when the absolute paths would not fit in a page: the paths in `data` are relative to this
   * dir, and the mount must be made with it as the working directory (like dockerd's mountFrom).
   */
  cwd?: string;
}

function checkLayerPath(p: string, what: string): void {
  if (!posix.isAbsolute(p)) throw new SnapshotError(`${what} must be an absolute path: ${p}`, { code: 'SNAPSHOT_PATH' });
  if (/[,:\\\n]/.test(p)) {
    throw new SnapshotError(`${what} cannot be used in overlay mount options (contains ',', ':', '\\' or a newline): ${p}`, {
      code: 'SNAPSHOT_PATH',
    });
  }
}

/** `<overlay2>/l/<lid>` for a layer's `<overlay2>/<id>/diff` when its `link` file and symlink exist, else the path. */
function shortLayerLink(diffDir: string): string {
  const d = posix.normalize(diffDir);
  if (posix.basename(d) !== 'diff') return diffDir;
  const layerDir = posix.dirname(d);
  try {
    const lid = readFileSync(posix.join(layerDir, 'link'), 'utf8').trim();
    const short = posix.join(posix.dirname(layerDir), 'l', lid);
    return /^[A-Z0-9]+$/.test(lid) && existsSync(short) ? short : diffDir;
  } catch {
    return diffDir;
  }
}

/**
 * Overlay mount data for a RUN: lowerdir = init layer, then the image's layers (top-most first),
 * upperdir and workdir from `rootfs`. With many layers the data can exceed a page; then the paths
 * are made relative to their deepest common directory (returned as `cwd`).
 */
export function overlayMountData(initDir: string, rootfs: RootfsSpec): OverlayMount {
  checkLayerPath(initDir, 'init layer dir');
  rootfs.lowerDirs.forEach((d) => checkLayerPath(d, 'lower dir'));
  checkLayerPath(rootfs.upperDir, 'upper dir');
  checkLayerPath(rootfs.workDir, 'work dir');
  const feats = featureOptions();
  const build = (f: (p: string) => string): string =>
    (feats === '' ? '' : feats + ',') +
    `lowerdir=${[initDir, ...rootfs.lowerDirs].map(f).join(':')},upperdir=${f(rootfs.upperDir)},workdir=${f(rootfs.workDir)}`;
  const abs = build((p) => posix.normalize(p));
  if (abs.length <= MOUNT_DATA_MAX) return { data: abs };
  // Like dockerd, name lower layers by their short `l/<lid>` links when the full paths do not fit.
  const lowers = rootfs.lowerDirs.map(shortLayerLink);
  const all = [initDir, ...lowers, rootfs.upperDir, rootfs.workDir].map((p) => posix.normalize(p));
  let common = posix.dirname(all[0] as string);
  for (const p of all) {
    while (common !== '/' && !(p === common || p.startsWith(common + '/'))) common = posix.dirname(common);
  }
  const relOf = (p: string) => posix.relative(common, posix.normalize(p)) || '.';
  const rel = (feats === '' ? '' : feats + ',') + `lowerdir=${[initDir, ...lowers].map(relOf).join(':')},upperdir=${relOf(rootfs.upperDir)},workdir=${relOf(rootfs.workDir)}`;
  if (rel.length > MOUNT_DATA_MAX) {
    throw new SnapshotError(
      `overlay mount options are ${rel.length} bytes even with paths relative to ${common}; the kernel takes at most ${MOUNT_DATA_MAX} (${rootfs.lowerDirs.length} lower dirs)`,
      { code: 'SNAPSHOT_TOO_MANY_LAYERS' },
    );
  }
  return { data: rel, cwd: common };
}

// ---------------------------------------------------------------------------------------------
// Reading through layers without a mount


/** Whether a dir carries overlay's opaque xattr (`getfattr`, package `attr`). */
function isOpaqueDir(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn('getfattr', ['--absolute-names', '--only-values', '-n', opaqueXattr(), '--', path], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => reject(new SnapshotError(`cannot run getfattr (install the Debian package "attr"): ${e.message}`, { cause: e })));
    child.on('close', (code) => {
      const value = Buffer.concat(out).toString('latin1');
      if (code === 0) resolve(value === 'y');
      else if (/No such attribute|Operation not supported/.test(Buffer.concat(err).toString())) resolve(false);
      else reject(new SnapshotError(`getfattr ${path}: ${Buffer.concat(err).toString().trim()}`));
    });
  });
}

export interface LayeredEntry {
  /** The layer dir the entry comes from. */
  layer: string;
  /** Its host path. */
  hostPath: string;
  stat: Stats;
}

/**
 * lstat a path (absolute inside the rootfs, not following a final symlink, NOT resolving symlinks
 * in parents: a parent that is a symlink gives undefined) in the merged view of `layers` (top-most
 * first) by overlay's rules: the top-most layer with the entry wins; a 0/0 char device hides what
 * is below; a directory merges with directories below it until a non-dir, a whiteout, or an opaque
 * directory.
 */
export async function lstatLayered(layers: readonly string[], path: string): Promise<LayeredEntry | undefined> {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  let candidates = [...layers];
  let rel = '';
  let found: LayeredEntry | undefined;
  for (let i = 0; i < parts.length; i++) {
    rel += '/' + (parts[i] as string);
    const isLast = i === parts.length - 1;
    found = undefined;
    const next: string[] = [];
    for (let j = 0; j < candidates.length; j++) {
      const layer = candidates[j] as string;
      const st = lstatOrUndefined(layer + rel);
      if (st === undefined) continue;
      if (found === undefined) {
        if (isWhiteout(st)) return undefined;
        found = { layer, hostPath: layer + rel, stat: st };
        if (!st.isDirectory()) break;
        next.push(layer);
      } else {
        if (!st.isDirectory()) break; // a whiteout or non-dir ends the merge
        next.push(layer);
      }
      // Is there anything further down to merge? Only then does opacity matter.
      if (!isLast && j < candidates.length - 1 && (await isOpaqueDir(layer + rel))) break;
    }
    if (found === undefined) return undefined;
    if (!isLast && !found.stat.isDirectory()) return undefined;
    candidates = next;
  }
  if (parts.length === 0) {
    const layer = layers[0];
    if (layer === undefined) return undefined;
    return { layer, hostPath: layer, stat: lstatSync(layer) };
  }
  return found;
}

const MAX_SYMLINK_ITER = 255;

/**
 * Resolve `path` inside the merged view of `layers` following symlinks without leaving the root
 * (moby/sys/symlink FollowSymlinkInScope: `..` stops at `/`, absolute targets restart at the
 * root, missing components are accepted). Returns the clean absolute in-rootfs path.
 */
export async function resolveLayeredPath(layers: readonly string[], path: string): Promise<string> {
  let rest = path;
  let resolved = ''; // "" or "/a/b"
  for (let n = 0; rest !== ''; n++) {
    if (n > MAX_SYMLINK_ITER) throw new SnapshotError(`too many links in ${path}`, { code: 'SNAPSHOT_SYMLINK_LOOP' });
    const i = rest.indexOf('/');
    const p = i === -1 ? rest : rest.slice(0, i);
    rest = i === -1 ? '' : rest.slice(i + 1);
    if (p === '' || p === '.') continue;
    if (p === '..') {
      resolved = resolved.slice(0, Math.max(0, resolved.lastIndexOf('/')));
      continue;
    }
    const candidate = `${resolved}/${p}`;
    const entry = await lstatLayered(layers, candidate);
    if (entry === undefined || !entry.stat.isSymbolicLink()) {
      resolved = candidate;
      continue;
    }
    const dest = readlinkSync(entry.hostPath);
    if (dest.startsWith('/')) resolved = '';
    rest = dest + '/' + rest;
  }
  return resolved === '' ? '/' : resolved;
}

/**
 * Read a file of the merged rootfs (e.g. /etc/passwd for USER and --chown) straight from the
 * layer dirs (top-most first: upper dir, then the image's layers), following symlinks in scope.
 * undefined when it does not exist or is not a regular file.
 */
export async function readLayeredFile(layers: readonly string[], path: string): Promise<Buffer | undefined> {
  const resolved = await resolveLayeredPath(layers, path);
  const entry = await lstatLayered(layers, resolved);
  if (entry === undefined || !entry.stat.isFile()) return undefined;
  return readFile(entry.hostPath);
}
