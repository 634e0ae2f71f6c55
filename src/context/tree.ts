/**
 * Source trees for COPY/ADD: the build context as the classic builder's daemon sees it, and a plain
 * directory (a stage's or image's rootfs, for `COPY --from`).
 *
 * The build context: the docker 20.10 CLI tars the context directory (walk in byte order; paths
 * excluded by .dockerignore left out, a directory skipped whole unless an exception pattern starts
 * with its path; uid/gid 0; hard links after the first as tar links), the daemon untars it (parent
 * directories missing from the tar are created 0755 and have no tar entry, hence no content sum)
 * and then deletes `.dockerignore` and the Dockerfile when they are themselves ignored. The tarsum
 * of every tar entry (see hash.ts) is what COPY's history hash is built from.
 */
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { goClean } from '../layer/bytes.js';
import { readXattrTree } from '../layer/host-tools.js';
import { LayerError } from '../layer/errors.js';
import { hostNameLookup, type NameLookup } from '../layer/users.js';
import { DOCKERIGNORE, PatternMatcher, isExcluded, readDockerignore, trimBuildFilesFromExcludes, type IgnoreFile } from './dockerignore.js';
import { tarsumOfEntry, type ModeStyle } from './hash.js';
import { cacheKey, type CacheStamp, type HashCache } from './hash-cache.js';
import { Pacer } from '../sys/yield.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block';

/** One path of a source tree, with the metadata a tar header would carry. */
export interface SourceEntry {
  /** Clean path relative to the tree root; '.' is the root. */
  rel: string;
  type: EntryType;
  /** Permission bits plus setuid/setgid/sticky (07777). */
  mode: number;
  /** Regular files only (0 otherwise). */
  size: number;
  /** Modification time, whole seconds. */
  mtime: number;
  uid: number;
  gid: number;
  /** Symlink target. */
  linkTarget?: string;
  devMajor: number;
  devMinor: number;
  /** Where the entry lives on disk (data, xattrs); absent for directories only the daemon created. */
  diskPath?: string;
  /** `dev:ino` of a non-directory with more than one link (hard-link grouping). */
  inode?: string;
  /** Context only: the CLI sent this path as a tar hard link to that earlier path. */
  hardlinkTo?: string;
  /** `security.capability` (v3 rewritten to v2, as the archive code does). */
  capability?: Buffer;
  /** A directory that exists only because the daemon created a missing parent. */
  implied?: boolean;
  /** What the hash cache keys on (hash-cache.ts); absent for directories only the daemon created. */
  stamp?: CacheStamp;
}

export interface SourceTree {
  readonly kind: 'context' | 'rootfs';
  /** Directory on disk. */
  readonly root: string;
  /** The entry at `rel` without following a final symlink; undefined when absent. Throws NotDirError through a non-directory. */
  lstat(rel: string): Promise<SourceEntry | undefined>;
  /** Names in a directory, sorted bytewise (Go's filepath.Walk order). */
  readdir(rel: string): Promise<string[]>;
  /** The tarsum (hex) of the entry at `rel`, undefined when the source has none (Docker then uses the path itself). */
  sum(rel: string): Promise<string | undefined>;
  /** In-memory trees: the entries at and under a clean `rel` in walk order (pre-order, names bytewise). */
  entriesUnder?(rel: string): SourceEntry[];
  /** In-memory trees: sum(rel) when it is known without reading anything (memoised or cached), else undefined. */
  knownSum?(rel: string): string | undefined;
}

/** An lstat through a path component that is not a directory. */
export class NotDirError extends Error {
  readonly path: string;
  constructor(path: string) {
    super(`lstat ${path}: not a directory`);
    this.path = path;
  }
}

/**
 * Order of the UTF-8 bytes, without encoding in the common case: ASCII code units compare the same
 * way; from the first difference involving anything else, the rest is encoded and compared (from
 * the pair's start when the difference is in a surrogate pair's second half).
 */
export function byteCompare(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x < 0x80 && y < 0x80) return x < y ? -1 : 1;
    const from = i > 0 && a.charCodeAt(i - 1) >= 0xd800 && a.charCodeAt(i - 1) <= 0xdbff ? i - 1 : i;
    return Buffer.compare(Buffer.from(a.slice(from), 'utf8'), Buffer.from(b.slice(from), 'utf8'));
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '.' : rel.slice(0, i);
}

function joinRel(dir: string, name: string): string {
  return dir === '.' ? name : `${dir}/${name}`;
}

/** VFS_CAP_REVISION_3 → 2, truncated to 20 bytes (archive.ReadSecurityXattrToTarHeader). */
export function normalizeCapability(v: Buffer): Buffer {
  if (v.length > 3 && v[3] === 3) {
    const out = Buffer.from(v.subarray(0, Math.min(20, v.length)));
    out[3] = 2;
    return out;
  }
  return Buffer.from(v);
}

async function readCapabilities(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  let tree: Map<string, Map<string, Buffer>>;
  try {
    tree = await readXattrTree(root, '^security\\.capability$');
  } catch (e) {
    // No getfattr on this host, or a tree it cannot read: no capabilities (they are rare in contexts).
    if (e instanceof LayerError) return out;
    throw e;
  }
  for (const [rel, attrs] of tree) {
    const v = attrs.get('security.capability');
    if (v !== undefined) out.set(rel === '' ? '.' : Buffer.from(rel, 'latin1').toString('utf8'), normalizeCapability(v));
  }
  return out;
}

function typeOf(st: import('node:fs').BigIntStats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return undefined; // sockets: archive/tar refuses them
}

/** Linux dev_t → major/minor (glibc gnu_dev_major/minor). */
export function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
export function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/** A synchronous lstat (sys/yield.ts: an async one costs several times more). */
function entryFromDisk(rel: string, diskPath: string): SourceEntry | undefined {
  const st = lstatSync(diskPath, { bigint: true });
  const type = typeOf(st);
  if (type === undefined) return undefined;
  const e: SourceEntry = {
    rel,
    type,
    mode: Number(st.mode & 0o7777n),
    size: type === 'file' ? Number(st.size) : 0,
    mtime: Number(st.mtimeMs / 1000n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    devMajor: type === 'char' || type === 'block' ? devMajor(st.rdev) : 0,
    devMinor: type === 'char' || type === 'block' ? devMinor(st.rdev) : 0,
    diskPath,
  };
  if (type === 'symlink') e.linkTarget = readlinkSync(diskPath);
  // Every entry, directories too: a sum that misses the cache makes the build read the whole
  // tree's capabilities (a getfattr run), which an unchanged directory must not cost.
  const changed = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
  e.stamp = { sig: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, changedMs: Number(changed / 1_000_000n) };
  if (type !== 'dir' && st.nlink > 1n) e.inode = `${st.dev}:${st.ino}`;
  return e;
}

// ---------------------------------------------------------------------------------------------
// The build context

export interface LoadContextOptions {
  /** The context directory. */
  contextDir: string;
  /**
   * The Dockerfile on disk (absolute, or relative to the process cwd). Used to find
   * `<Dockerfile>.dockerignore` and, when inside the context, for Docker's rule that an ignored
   * Dockerfile is still sent but then removed.
   */
  dockerfile?: string;
  /** Patterns to use instead of reading the ignore file (null: no ignore file at all). */
  ignore?: IgnoreFile | null;
  /**
   * Tar header modes the client sends: 'perm' (current clients: permission bits only, the default)
   * or 'typed' (the docker 20.10 CLI: plus S_IFREG/S_IFDIR/... bits). Only the hashes change.
   */
  modeStyle?: ModeStyle;
  /** mtime (seconds) for directories the daemon would create; default: now. */
  now?: number;
  /** Sums of unchanged files from earlier builds (and where this build's are recorded). */
  hashCache?: HashCache;
  /**
   * Read security.capability (a getfattr run over the whole tree, ≈ 10 ms) only when a sum
   * misses the hash cache: for hashing alone. Copying needs them on the entries (the default).
   */
  lazyCapabilities?: boolean;
}

/** BuildContext.toTransfer: one row per entry (SourceEntry's fields; null for absent ones). */
export interface ContextTransfer {
  root: string;
  modeStyle: ModeStyle;
  entries: Array<[rel: string, type: EntryType, mode: number, size: number, mtime: number, uid: number, gid: number, linkTarget: string | null, devMajor: number, devMinor: number, diskPath: string | null, inode: string | null, hardlinkTo: string | null, capability: string | null, implied: 0 | 1]>;
}

export class BuildContext implements SourceTree {
  readonly kind = 'context' as const;
  readonly root: string;
  readonly ignoreFile: IgnoreFile | undefined;
  readonly modeStyle: ModeStyle;
  private readonly entries: Map<string, SourceEntry>;
  private readonly children: Map<string, string[]>;
  private readonly sums = new Map<string, string>();
  private readonly cache: HashCache | undefined;
  /** Set with lazyCapabilities: puts the capabilities on the entries, once. */
  private capabilities: (() => Promise<void>) | undefined;

  constructor(root: string, entries: Map<string, SourceEntry>, ignoreFile: IgnoreFile | undefined, modeStyle: ModeStyle, cache?: HashCache, capabilities?: () => Promise<void>) {
    this.root = root;
    this.cache = cache;
    this.capabilities = capabilities;
    this.entries = entries;
    this.ignoreFile = ignoreFile;
    this.modeStyle = modeStyle;
    this.children = new Map();
    for (const rel of entries.keys()) {
      if (rel === '.') continue;
      const p = parentOf(rel);
      let list = this.children.get(p);
      if (list === undefined) this.children.set(p, (list = []));
      list.push(rel.slice(p === '.' ? 0 : p.length + 1));
    }
    for (const list of this.children.values()) list.sort(byteCompare);
  }

  /** Every visible path, '.' first, in walk order. */
  paths(): string[] {
    const out: string[] = [];
    this.eachUnder('.', (e) => void out.push(e.rel));
    return out;
  }

  entriesUnder(rel: string): SourceEntry[] {
    const out: SourceEntry[] = [];
    this.eachUnder(goClean(rel), (e) => void out.push(e));
    return out;
  }

  /** `rel` and everything under it, in walk order (pre-order, names bytewise); `fn` returning false stops the walk. */
  private eachUnder(rel: string, fn: (e: SourceEntry) => boolean | void): void {
    let stopped = false;
    const visit = (r: string): void => {
      const e = this.entries.get(r);
      if (e === undefined || stopped) return;
      if (fn(e) === false) {
        stopped = true;
        return;
      }
      for (const n of this.children.get(r) ?? []) visit(joinRel(r, n));
    };
    visit(rel);
  }

  knownSum(rel: string): string | undefined {
    const s = this.sums.get(rel);
    if (s !== undefined || this.cache === undefined) return s;
    const e = this.entries.get(rel);
    if (e === undefined || e.implied === true || e.stamp === undefined || rel === '.') return undefined;
    const key = cacheKey(e.stamp, e);
    if (!this.cache.has(rel, key)) return undefined;
    const hit = this.cache.get(rel, key)!;
    this.sums.set(rel, hit);
    return hit;
  }

  /** Entries at and under `rel` and their file bytes; counting stops past `maxEntries`. */
  sizeOf(rel: string, maxEntries = Infinity): { entries: number; bytes: number } {
    const out = { entries: 0, bytes: 0 };
    this.eachUnder(goClean(rel), (e) => {
      out.entries++;
      out.bytes += e.size;
      return out.entries <= maxEntries;
    });
    return out;
  }

  /**
   * The entries in a form a rootfs worker can take (JSON), so it copies without walking the
   * context again; it has no sums (the build hashed already). Read the capabilities first.
   */
  toTransfer(): ContextTransfer {
    const rows: ContextTransfer['entries'] = [];
    for (const e of this.entries.values()) {
      rows.push([e.rel, e.type, e.mode, e.size, e.mtime, e.uid, e.gid, e.linkTarget ?? null, e.devMajor, e.devMinor, e.diskPath ?? null, e.inode ?? null, e.hardlinkTo ?? null, e.capability?.toString('base64') ?? null, e.implied === true ? 1 : 0]);
    }
    return { root: this.root, modeStyle: this.modeStyle, entries: rows };
  }

  static fromTransfer(t: ContextTransfer): BuildContext {
    const entries = new Map<string, SourceEntry>();
    for (const [rel, type, mode, size, mtime, uid, gid, linkTarget, devMajor, devMinor, diskPath, inode, hardlinkTo, capability, implied] of t.entries) {
      const e: SourceEntry = { rel, type, mode, size, mtime, uid, gid, devMajor, devMinor };
      if (linkTarget !== null) e.linkTarget = linkTarget;
      if (diskPath !== null) e.diskPath = diskPath;
      if (inode !== null) e.inode = inode;
      if (hardlinkTo !== null) e.hardlinkTo = hardlinkTo;
      if (capability !== null) e.capability = Buffer.from(capability, 'base64');
      if (implied === 1) e.implied = true;
      entries.set(rel, e);
    }
    return new BuildContext(t.root, entries, undefined, t.modeStyle);
  }

  /** Puts security.capability on the entries (copying needs it) when lazyCapabilities deferred it. */
  async readCapabilities(): Promise<void> {
    await this.capabilities?.();
  }

  async lstat(rel: string): Promise<SourceEntry | undefined> {
    const r = goClean(rel);
    const e = this.entries.get(r);
    if (e !== undefined) return e;
    // A path below a non-directory: Docker's lstat fails with ENOTDIR.
    for (let p = parentOf(r); p !== '.'; p = parentOf(p)) {
      const pe = this.entries.get(p);
      if (pe !== undefined) {
        if (pe.type !== 'dir') throw new NotDirError(r);
        break;
      }
    }
    return undefined;
  }

  async readdir(rel: string): Promise<string[]> {
    return [...(this.children.get(goClean(rel)) ?? [])];
  }

  async sum(rel: string): Promise<string | undefined> {
    const r = goClean(rel);
    const e = this.entries.get(r);
    if (e === undefined || e.implied === true || r === '.') return undefined;
    let s = this.sums.get(r);
    if (s === undefined) {
      const keyOf = () => (this.cache !== undefined && e.stamp !== undefined ? cacheKey(e.stamp, e) : undefined);
      let key = keyOf();
      s = key !== undefined ? this.cache!.get(r, key) : undefined;
      if (s === undefined && this.capabilities !== undefined) {
        // Not yet read: a hit above was for an entry stored without one, and setting one changes
        // the ctime in the key, so it still has none. On a miss, read them and look again.
        await this.capabilities();
        key = keyOf();
        s = key !== undefined ? this.cache!.get(r, key) : undefined;
      }
      if (s === undefined) {
        s = await tarsumOfEntry(e, { style: this.modeStyle, context: true });
        if (key !== undefined) this.cache!.set(r, key, s, e.stamp!);
      }
      this.sums.set(r, s);
    }
    return s;
  }
}

/**
 * Walk the context as the 20.10 CLI tars it and the daemon untars it. Unreadable entries and
 * sockets are left out (the CLI logs and skips them).
 */
export async function loadBuildContext(opts: LoadContextOptions): Promise<BuildContext> {
  const root = resolve(opts.contextDir);
  const rootSt = await lstat(root);
  if (!rootSt.isDirectory()) throw new Error(`context is not a directory: ${root}`);
  const ignoreFile = opts.ignore === null ? undefined : (opts.ignore ?? (await readDockerignore({ contextDir: root, ...(opts.dockerfile !== undefined ? { dockerfile: opts.dockerfile } : {}) })));
  const patterns = ignoreFile?.patterns ?? [];
  let dockerfileRel: string | undefined;
  if (opts.dockerfile !== undefined) {
    const rel = relative(root, resolve(opts.dockerfile));
    if (rel !== '' && !rel.startsWith('..') && !isAbsolute(rel)) dockerfileRel = rel.split(sep).join('/');
  }
  const pm = new PatternMatcher(trimBuildFilesFromExcludes(patterns, dockerfileRel));
  const now = opts.now ?? Math.floor(Date.now() / 1000);

  const entries = new Map<string, SourceEntry>();
  const rootEntry = entryFromDisk('.', root);
  if (rootEntry === undefined) throw new Error(`cannot read context ${root}`);
  rootEntry.uid = 0;
  rootEntry.gid = 0;
  entries.set('.', rootEntry);

  const pacer = new Pacer();
  const walk = async (dirRel: string, dirPath: string): Promise<void> => {
    let names: string[];
    try {
      names = readdirSync(dirPath);
    } catch {
      return;
    }
    names.sort(byteCompare);
    for (let i = 0; i < names.length; i++) {
      await pacer.tick();
      const rel = joinRel(dirRel, names[i]!);
      const path = dirPath.endsWith('/') ? dirPath + names[i]! : `${dirPath}/${names[i]!}`;
      let e: SourceEntry | undefined;
      try {
        e = entryFromDisk(rel, path);
      } catch {
        continue;
      }
      if (e === undefined) continue;
      if (pm.matches(rel)) {
        if (e.type === 'dir' && pm.mayReincludeUnder(rel)) await walk(rel, path);
        continue;
      }
      e.uid = 0;
      e.gid = 0;
      entries.set(rel, e);
      if (e.type === 'dir') await walk(rel, path);
    }
  };
  await walk('.', root);

  // Hard links: the first path of an inode in walk order is sent as a file, later ones as links.
  const firstOfInode = new Map<string, string>();
  for (const e of entries.values()) {
    if (e.inode === undefined) continue;
    const first = firstOfInode.get(e.inode);
    if (first === undefined) firstOfInode.set(e.inode, e.rel);
    else e.hardlinkTo = first;
  }

  // Parents missing from the tar are created by the daemon when it untars.
  for (const rel of [...entries.keys()]) {
    for (let p = parentOf(rel); p !== '.' && !entries.has(p); p = parentOf(p)) {
      entries.set(p, { rel: p, type: 'dir', mode: 0o755, size: 0, mtime: now, uid: 0, gid: 0, devMajor: 0, devMinor: 0, implied: true });
    }
  }

  // The daemon removes .dockerignore and the Dockerfile when the patterns exclude them.
  for (const name of [DOCKERIGNORE, ...(dockerfileRel !== undefined ? [dockerfileRel] : [])]) {
    if (!isExcluded(name, patterns)) continue;
    const r = goClean(name);
    for (const k of [...entries.keys()]) if (k === r || k.startsWith(`${r}/`)) entries.delete(k);
  }

  let capabilitiesRead: Promise<void> | undefined;
  const readAllCapabilities = () =>
    (capabilitiesRead ??= (async () => {
      if (![...entries.values()].some((e) => e.type !== 'dir' && e.type !== 'symlink')) return;
      for (const [rel, v] of await readCapabilities(root)) {
        const e = entries.get(rel);
        if (e !== undefined && e.implied !== true) e.capability = v;
      }
    })());
  if (opts.lazyCapabilities === true) return new BuildContext(root, entries, ignoreFile, opts.modeStyle ?? 'perm', opts.hashCache, readAllCapabilities);
  await readAllCapabilities();
  return new BuildContext(root, entries, ignoreFile, opts.modeStyle ?? 'perm', opts.hashCache);
}

// ---------------------------------------------------------------------------------------------
// A plain directory (rootfs of a stage or image)

export interface DirTreeOptions {
  /** uname/gname for hashes (the daemon looks them up on its host). Default: the host's files. */
  names?: NameLookup;
}

/**
 * A directory read lazily from disk, hashed the way the classic builder hashes `COPY --from`
 * sources (lazySource: headers from the files' own metadata, typed modes, real owners and host
 * user/group names, no hard-link entries).
 */
export class DirTree implements SourceTree {
  readonly kind = 'rootfs' as const;
  readonly root: string;
  private readonly names: NameLookup;
  private readonly sums = new Map<string, string>();
  private caps: Promise<Map<string, Buffer>> | undefined;

  constructor(root: string, opts: DirTreeOptions = {}) {
    this.root = resolve(root);
    this.names = opts.names ?? hostNameLookup();
  }

  async lstat(rel: string): Promise<SourceEntry | undefined> {
    const r = goClean(rel);
    try {
      return entryFromDisk(r, r === '.' ? this.root : join(this.root, r));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      if (code === 'ENOTDIR') throw new NotDirError(r);
      throw e;
    }
  }

  async readdir(rel: string): Promise<string[]> {
    const r = goClean(rel);
    const names = readdirSync(r === '.' ? this.root : join(this.root, r));
    return names.sort(byteCompare);
  }

  async sum(rel: string): Promise<string | undefined> {
    const r = goClean(rel);
    let s = this.sums.get(r);
    if (s !== undefined) return s;
    const e = await this.lstat(r).catch(() => undefined);
    if (e === undefined) return undefined;
    this.caps ??= readCapabilities(this.root);
    const cap = (await this.caps).get(r);
    if (cap !== undefined) e.capability = cap;
    s = await tarsumOfEntry(e, { style: 'typed', context: false, uname: this.names.user(e.uid) ?? '', gname: this.names.group(e.gid) ?? '' });
    this.sums.set(r, s);
    return s;
  }
}
