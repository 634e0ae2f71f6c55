/**
 * applyLayer: extract a layer tar into an overlay2 `diff` directory the way dockerd 20.10 does on
 * `docker load` / pull (moby pkg/archive Unpack with the overlay whiteout converter, run chrooted
 * there), while hashing the uncompressed bytes (diffID) and recording the tar-split of the tar
 * exactly as read (what dockerd registers). Entries are parsed like Go's archive/tar Reader
 * (USTAR, PAX `x`/`g`, GNU `L`/`K` long names, base-256 numbers, old GNU/STAR/V7 headers).
 *
 * Extraction (per entry, in archive order):
 * - names are cleaned (Go filepath.Clean); `.` (the root) is skipped; missing parents are created
 *   0755 root:root; an existing path is removed unless both it and the entry are directories;
 * - `.wh..wh..opq` → xattr `trusted.overlay.opaque=y` (in a user namespace `user.overlay.opaque`) on its directory; `.wh.<n>` → char device 0/0,
 *   mode 0, owned by the header's uid/gid; neither is written as a file;
 * - files, dirs, symlinks, hardlinks, fifos, char/block devices; then lchown to the header ids, PAX
 *   `SCHILY.xattr.*` (except overlay's own), chmod of the permission + setuid/setgid/sticky bits
 *   (not for symlinks), and times (lutimes for symlinks; directories' times are set last).
 *
 * Safety (no chroot here, so stricter than dockerd): an entry is refused with a LayerError naming it
 * when its cleaned name is absolute or climbs out with `..`, when a hardlink target leaves the layer,
 * and when any parent component of an entry (or of a hardlink target) is not a real directory
 * inside diffDir — symlinks are never followed while creating entries. Paths are opened with
 * O_NOFOLLOW/O_EXCL, ownership is set with lchown, and nothing is written outside diffDir.
 *
 * Corrupt or truncated input is an error; unlike Go, a missing end-of-archive marker counts as
 * truncation. GNU sparse files and compressions other than gzip are refused.
 *
 * On ANY error the extraction is left half-done: the caller must remove diffDir (and never
 * register it).
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, type BigIntStats } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, realpath, rm, symlink, utimes } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { asDiffId, type DiffId } from '../image/digest.js';
import { type ByteString, bstrDisplay, bstrToBytes, goBase, goClean, goDir } from './bytes.js';
import { Crc64 } from './crc64.js';
import { LayerError } from './errors.js';
import { makeNodes, type NodeSpec, writeXattrs, type XattrSet } from './host-tools.js';
import { diffSize } from './size.js';
import {
  BLOCK_SIZE,
  blockPadding,
  decodeHeaderBlock,
  isHeaderOnlyType,
  isZeroBlock,
  MAX_PAX_SIZE,
  PAX_KEYS,
  PAX_SCHILY_XATTR,
  parsePaxRecords,
  parsePaxTime,
  type RawHeader,
  TarFormatError,
  TYPE_BLOCK,
  TYPE_CHAR,
  TYPE_DIR,
  TYPE_FIFO,
  TYPE_GNU_LONGLINK,
  TYPE_GNU_LONGNAME,
  TYPE_GNU_SPARSE,
  TYPE_LINK,
  TYPE_REG,
  TYPE_REGA,
  TYPE_SYMLINK,
  TYPE_XGLOBAL,
  TYPE_XHEADER,
} from './tar-header.js';
import { TarSplitWriter } from './tar-split.js';
import { isOverlayXattr, opaqueXattr } from '../snapshot/overlay-xattrs.js';

export interface ApplyLayerOptions {
  /** Fail with `invalid diffID for layer: expected X, got Y` when the tar's digest differs. */
  expectDiffId?: DiffId;
}

export interface ApplyLayerResult {
  /** sha256 of the uncompressed tar, every byte read (trailing data included). */
  diffId: DiffId;
  /** tar-split.json.gz of the tar as read. */
  tarSplit: Buffer;
  /** STORE-FORMAT §1 size of diffDir after extraction. */
  size: number;
}

/** A parsed entry (archive/tar Header, as much as extraction needs). */
export interface TarEntry {
  typeflag: string;
  name: ByteString;
  linkname: ByteString;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: { sec: number; nsec: number };
  atime: { sec: number; nsec: number } | undefined;
  uname: ByteString;
  gname: ByteString;
  devmajor: number;
  devminor: number;
  xattrs: Map<ByteString, ByteString>;
}

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_OPAQUE = '.wh..wh..opq';
const TRAILING_CHUNK = 1 << 20;
const DATA_CHUNK = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Input

/** Pull-based reader over a byte stream that hashes everything it hands out. */
class ByteSource {
  private buf: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private readonly hash = createHash('sha256');
  total = 0;

  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.ended) {
      const r = await this.it.next();
      if (r.done === true) {
        this.ended = true;
      } else if (r.value.length > 0) {
        this.buf.push(r.value);
        this.buffered += r.value.length;
      }
    }
  }

  private take(n: number): Buffer {
    const out: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const head = this.buf[0] as Buffer;
      if (head.length <= need) {
        out.push(head);
        this.buf.shift();
        need -= head.length;
      } else {
        out.push(head.subarray(0, need));
        this.buf[0] = head.subarray(need);
        need = 0;
      }
    }
    this.buffered -= n;
    const b = out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
    this.hash.update(b);
    this.total += b.length;
    return b;
  }

  /** Exactly n bytes, or fewer only at the end of the input. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    return this.take(Math.min(n, this.buffered));
  }

  /** Between 1 and n bytes; empty only at the end of the input. */
  async readSome(n: number): Promise<Buffer> {
    if (this.buffered === 0) await this.fill(1);
    return this.take(Math.min(n, this.buffered));
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

async function* chunks(it: AsyncIterator<unknown>, head: Buffer, done: boolean): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  if (done) return;
  for (;;) {
    const r = await it.next();
    if (r.done === true) return;
    yield toBuffer(r.value);
  }
}

function toBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new LayerError('layer stream yielded a non-byte chunk', { code: 'LAYER_CORRUPT' });
}

/** Sniff the compression (moby DecompressStream magic numbers) and return the tar byte iterator. */
async function openInput(tar: NodeJS.ReadableStream): Promise<AsyncIterator<Buffer>> {
  const it = (tar as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < 6 && !done) {
    const r = await it.next();
    if (r.done === true) done = true;
    else head = Buffer.concat([head, toBuffer(r.value)]);
  }
  const starts = (m: number[]): boolean => head.length >= m.length && m.every((b, i) => head[i] === b);
  if (starts([0x1f, 0x8b, 0x08])) {
    const gunzip = createGunzip();
    pipeline(Readable.from(chunks(it, head, done)), gunzip).catch(() => {
      /* the error also destroys gunzip, which the iteration below reports */
    });
    const gi = (gunzip as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    return {
      next: async () => {
        try {
          return await gi.next();
        } catch (cause) {
          throw new LayerError(`corrupt gzip stream: ${(cause as Error).message}`, { code: 'LAYER_CORRUPT', cause });
        }
      },
    };
  }
  if (starts([0x42, 0x5a, 0x68]) || starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) || starts([0x28, 0xb5, 0x2f, 0xfd])) {
    throw new LayerError('unsupported layer compression (only gzip and plain tar are supported)', { code: 'LAYER_CORRUPT' });
  }
  return chunks(it, head, done);
}

// ---------------------------------------------------------------------------------------------
// Tar parsing (archive/tar Reader.next, with tar-split's raw accounting)

function corrupt(msg: string, name?: ByteString, cause?: unknown): LayerError {
  return new LayerError(msg, { code: 'LAYER_CORRUPT', ...(name === undefined ? {} : { entry: bstrDisplay(name) }), cause });
}

class TarParser {
  /** Raw bytes since the previous entry's data (its padding, then all header blocks). */
  raw: Buffer[] = [];
  private pad = 0;
  private lastName: ByteString | undefined;

  constructor(private readonly src: ByteSource) {}

  private where(): string {
    return this.lastName === undefined ? 'at the start of the archive' : `after ${JSON.stringify(bstrDisplay(this.lastName))}`;
  }

  private async readRaw(n: number, what: string, name?: ByteString): Promise<Buffer> {
    const b = await this.src.read(n);
    if (b.length !== n) {
      throw corrupt(`unexpected EOF: archive truncated (in ${what}${name === undefined ? ` ${this.where()}` : ''})`, name);
    }
    this.raw.push(b);
    return b;
  }

  /** The next entry, or undefined at the end-of-archive marker (whose bytes stay in `raw`). */
  async next(): Promise<TarEntry | undefined> {
    let pax: Map<ByteString, ByteString> | undefined;
    let longName = '';
    let longLink = '';
    for (;;) {
      if (this.pad > 0) {
        await this.readRaw(this.pad, 'padding');
        this.pad = 0;
      }
      const first = await this.src.read(BLOCK_SIZE);
      if (first.length === 0) throw corrupt(`unexpected EOF: archive truncated, no end-of-archive marker ${this.where()}`);
      if (first.length !== BLOCK_SIZE) throw corrupt(`unexpected EOF: archive truncated (partial header ${this.where()})`);
      this.raw.push(first);
      if (isZeroBlock(first)) {
        const second = await this.readRaw(BLOCK_SIZE, 'end-of-archive marker');
        if (isZeroBlock(second)) return undefined;
        throw corrupt(`invalid tar header: a zero block followed by a non-zero block ${this.where()}`);
      }
      let h: RawHeader;
      try {
        h = decodeHeaderBlock(first);
      } catch (e) {
        if (e instanceof TarFormatError) throw corrupt(`${e.message} ${this.where()}`, undefined, e);
        throw e;
      }
      const nb = isHeaderOnlyType(h.typeflag) ? 0 : h.size;
      if (nb < 0) throw corrupt('invalid tar header: negative size', h.name);

      if (h.typeflag === TYPE_XHEADER || h.typeflag === TYPE_XGLOBAL || h.typeflag === TYPE_GNU_LONGNAME || h.typeflag === TYPE_GNU_LONGLINK) {
        if (nb > MAX_PAX_SIZE) throw corrupt('extended header too long', h.name);
        const data = await this.readRaw(nb, 'extended header', h.name);
        this.pad = blockPadding(nb);
        if (h.typeflag === TYPE_XHEADER || h.typeflag === TYPE_XGLOBAL) {
          try {
            pax = parsePaxRecords(data);
          } catch (e) {
            if (e instanceof TarFormatError) throw corrupt(e.message, h.name, e);
            throw e;
          }
          if (h.typeflag === TYPE_XGLOBAL) {
            // Go returns the global header as an entry of its own (no data, size 0).
            const g = this.finish(h, pax, '', '');
            g.size = 0;
            g.typeflag = TYPE_XGLOBAL;
            this.lastName = g.name;
            return g;
          }
        } else {
          const s = data.toString('latin1');
          const nul = s.indexOf('\0');
          const v = nul >= 0 ? s.slice(0, nul) : s;
          if (h.typeflag === TYPE_GNU_LONGNAME) longName = v;
          else longLink = v;
        }
        continue;
      }

      const e = this.finish(h, pax, longName, longLink);
      if (e.typeflag === TYPE_REGA) e.typeflag = e.name.endsWith('/') ? TYPE_DIR : TYPE_REG;
      if (e.typeflag === TYPE_GNU_SPARSE || (pax !== undefined && [...pax.keys()].some((k) => k.startsWith('GNU.sparse.')))) {
        throw corrupt('sparse files are not supported', e.name);
      }
      const dataSize = isHeaderOnlyType(e.typeflag) ? 0 : e.size;
      if (dataSize < 0) throw corrupt('invalid tar header: negative size', e.name);
      this.pad = blockPadding(dataSize);
      this.lastName = e.name;
      return e;
    }
  }

  /** archive/tar mergePAX plus the GNU long names. */
  private finish(h: RawHeader, pax: Map<ByteString, ByteString> | undefined, longName: ByteString, longLink: ByteString): TarEntry {
    const e: TarEntry = {
      typeflag: h.typeflag,
      name: h.name,
      linkname: h.linkname,
      mode: h.mode,
      uid: h.uid,
      gid: h.gid,
      size: h.size,
      mtime: { sec: h.mtime, nsec: 0 },
      atime: undefined,
      uname: h.uname,
      gname: h.gname,
      devmajor: h.devmajor,
      devminor: h.devminor,
      xattrs: new Map(),
    };
    const int = (v: string, k: string): number => {
      if (!/^[+-]?\d+$/.test(v)) throw corrupt(`invalid PAX record ${k}=${JSON.stringify(v)}`, h.name);
      const n = parseInt(v, 10);
      if (!Number.isSafeInteger(n)) throw corrupt(`PAX record ${k} out of range`, h.name);
      return n;
    };
    const time = (v: string): { sec: number; nsec: number } => {
      try {
        return parsePaxTime(v);
      } catch (err) {
        throw corrupt((err as Error).message, h.name, err);
      }
    };
    for (const [k, v] of pax ?? []) {
      if (v === '') continue; // keep the USTAR value
      switch (k) {
        case PAX_KEYS.PAX_PATH:
          e.name = v;
          break;
        case PAX_KEYS.PAX_LINKPATH:
          e.linkname = v;
          break;
        case PAX_KEYS.PAX_UNAME:
          e.uname = v;
          break;
        case PAX_KEYS.PAX_GNAME:
          e.gname = v;
          break;
        case PAX_KEYS.PAX_UID:
          e.uid = int(v, k);
          break;
        case PAX_KEYS.PAX_GID:
          e.gid = int(v, k);
          break;
        case PAX_KEYS.PAX_SIZE:
          e.size = int(v, k);
          break;
        case PAX_KEYS.PAX_MTIME:
          e.mtime = time(v);
          break;
        case PAX_KEYS.PAX_ATIME:
          e.atime = time(v);
          break;
        case PAX_KEYS.PAX_CTIME:
          time(v);
          break;
        default:
          if (k.startsWith(PAX_SCHILY_XATTR)) e.xattrs.set(k.slice(PAX_SCHILY_XATTR.length), v);
      }
    }
    if (longName !== '') e.name = longName;
    if (longLink !== '') e.linkname = longLink;
    return e;
  }
}

// ---------------------------------------------------------------------------------------------
// Extraction

interface PostOps {
  path: Buffer;
  rel: ByteString;
  entry: TarEntry;
}

function ts(t: { sec: number; nsec: number }): number {
  return t.sec + t.nsec / 1e9;
}

/** moby system.Chtimes: times before the epoch are set to the epoch. */
function clampEpoch(t: { sec: number; nsec: number }): { sec: number; nsec: number } {
  return t.sec < 0 ? { sec: 0, nsec: 0 } : t;
}

function isUnder(rel: ByteString, prefix: ByteString): boolean {
  return rel === prefix || rel.startsWith(`${prefix}/`);
}

class Extractor {
  /** Relative paths (cleaned) known to be real directories we created or checked. */
  private readonly dirs = new Set<ByteString>(['']);
  /** Device nodes / fifos / whiteouts waiting for the batched mknod, by relative path. */
  private nodes = new Map<ByteString, { spec: NodeSpec; post: PostOps | undefined; owner: { uid: number; gid: number }; mtime?: { sec: number; nsec: number } }>();
  private xattrs: Array<XattrSet & { rel: ByteString; fromWhiteout: boolean }> = [];
  private dirTimes: Array<{ rel: ByteString; path: Buffer; entry: TarEntry }> = [];
  private readonly rootBytes: Buffer;

  constructor(readonly root: string) {
    this.rootBytes = Buffer.from(root, 'utf8');
  }

  abs(rel: ByteString): Buffer {
    return rel === '' ? this.rootBytes : Buffer.concat([this.rootBytes, Buffer.from('/'), bstrToBytes(rel)]);
  }

  /** Make sure every component of `relDir` is a real directory, creating missing ones 0755 root:root. */
  private async ensureDir(relDir: ByteString, entry: ByteString, create: boolean): Promise<void> {
    if (this.dirs.has(relDir)) return;
    const parts = relDir.split('/');
    let cur = '';
    for (const p of parts) {
      cur = cur === '' ? p : `${cur}/${p}`;
      if (this.dirs.has(cur)) continue;
      await this.flushIfPending(cur);
      const path = this.abs(cur);
      let st: BigIntStats | undefined;
      try {
        st = await lstat(path, { bigint: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      if (st === undefined) {
        if (!create) throw new LayerError(`${JSON.stringify(bstrDisplay(cur))} does not exist`, { entry: bstrDisplay(entry), code: 'LAYER_UNSAFE' });
        await mkdir(path, 0o755);
        await chmod(path, 0o755);
        await lchown(path, 0, 0);
      } else if (st.isSymbolicLink()) {
        throw new LayerError(`path component ${JSON.stringify(bstrDisplay(cur))} is a symlink; refusing to write through it`, { entry: bstrDisplay(entry), code: 'LAYER_UNSAFE' });
      } else if (!st.isDirectory()) {
        throw new LayerError(`path component ${JSON.stringify(bstrDisplay(cur))} is not a directory`, { entry: bstrDisplay(entry), code: 'LAYER_UNSAFE' });
      }
      this.dirs.add(cur);
    }
  }

  /** A pending node at `rel` (or at one of its parents) must exist before we look at the path. */
  private async flushIfPending(rel: ByteString): Promise<void> {
    if (this.nodes.size === 0) return;
    let cur = rel;
    for (;;) {
      if (this.nodes.has(cur)) {
        await this.flushNodes();
        return;
      }
      const i = cur.lastIndexOf('/');
      if (i < 0) return;
      cur = cur.slice(0, i);
    }
  }

  /** Create all pending nodes with one spawn, then give them owners, modes and times. */
  async flushNodes(): Promise<void> {
    if (this.nodes.size === 0) return;
    const pending = [...this.nodes.values()];
    this.nodes = new Map();
    await makeNodes(pending.map((n) => n.spec));
    for (const n of pending) {
      if (n.post !== undefined) {
        await this.postOps(n.post);
      } else {
        // A whiteout: dockerd only chowns it (its times are "now"); we also give it the header's
        // mtime so that re-tarring the diff reproduces the same bytes. Overlay never shows it.
        await lchown(n.spec.path, n.owner.uid, n.owner.gid);
        if (n.mtime !== undefined) await utimes(n.spec.path, ts(n.mtime), ts(n.mtime));
      }
    }
  }

  /** Forget queued work under a path we are about to remove (it would hit whatever replaces it). */
  private async removePath(rel: ByteString, path: Buffer): Promise<void> {
    await this.flushNodes();
    this.xattrs = this.xattrs.filter((x) => !isUnder(x.rel, rel));
    this.dirTimes = this.dirTimes.filter((d) => !isUnder(d.rel, rel));
    for (const d of [...this.dirs]) if (d !== '' && isUnder(d, rel)) this.dirs.delete(d);
    await rm(path, { recursive: true, force: true });
  }

  private async exists(path: Buffer): Promise<BigIntStats | undefined> {
    try {
      return await lstat(path, { bigint: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Extract one entry; `data` yields its content (regular files) and must be drained by the caller otherwise. */
  async extract(e: TarEntry, data: (sink: ((b: Buffer) => Promise<void>) | undefined) => Promise<void>): Promise<void> {
    if (e.typeflag === TYPE_XGLOBAL) return data(undefined);
    const rel = goClean(e.name);
    if (rel === '.') return data(undefined); // the layer root: dockerd skips it
    if (rel.startsWith('/')) throw new LayerError('absolute path in layer', { entry: bstrDisplay(e.name), code: 'LAYER_UNSAFE' });
    if (rel === '..' || rel.startsWith('../')) throw new LayerError('path escapes the layer directory', { entry: bstrDisplay(e.name), code: 'LAYER_UNSAFE' });

    const parent = goDir(rel) === '.' ? '' : goDir(rel);
    await this.ensureDir(parent, e.name, true);
    await this.flushIfPending(rel);
    const path = this.abs(rel);
    const existing = await this.exists(path);
    if (existing !== undefined && !(existing.isDirectory() && e.typeflag === TYPE_DIR)) {
      await this.removePath(rel, path);
    }

    // Overlay whiteout conversion (moby overlayWhiteoutConverter.ConvertRead).
    const base = goBase(rel);
    if (base === WHITEOUT_OPAQUE) {
      this.xattrs.push({ rel: parent, path: this.abs(parent), name: opaqueXattr(), value: Buffer.from('y'), fromWhiteout: true });
      return data(undefined);
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const orig = base.slice(WHITEOUT_PREFIX.length);
      if (orig === '' || orig === '.' || orig === '..') throw new LayerError('invalid whiteout name', { entry: bstrDisplay(e.name), code: 'LAYER_CORRUPT' });
      const origRel = parent === '' ? orig : `${parent}/${orig}`;
      if (this.nodes.has(origRel) || (await this.exists(this.abs(origRel))) !== undefined) {
        throw new LayerError(`cannot create whiteout: ${JSON.stringify(bstrDisplay(origRel))} already exists`, { entry: bstrDisplay(e.name), code: 'LAYER_CORRUPT' });
      }
      this.nodes.set(origRel, { spec: { path: this.abs(origRel), kind: 'c', major: 0, minor: 0 }, post: undefined, owner: { uid: e.uid, gid: e.gid }, mtime: clampEpoch(e.mtime) });
      return data(undefined);
    }

    const perm = e.mode & 0o7777;
    switch (e.typeflag) {
      case TYPE_DIR:
        if (existing === undefined || !existing.isDirectory()) await mkdir(path, perm & 0o777);
        this.dirs.add(rel);
        await data(undefined);
        break;
      case TYPE_REG: {
        const fh = await open(path, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY | fsConstants.O_NOFOLLOW, perm & 0o777);
        try {
          await data(async (b) => {
            let off = 0;
            while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
          });
        } finally {
          await fh.close();
        }
        break;
      }
      case TYPE_LINK: {
        let target = goClean(e.linkname);
        // dockerd joins the target to the layer root, so an absolute target is layer-relative.
        if (target.startsWith('/')) target = goClean(target.replace(/^\/+/, ''));
        if (target === '.' || target === '..' || target.startsWith('../')) {
          throw new LayerError(`hardlink target ${JSON.stringify(bstrDisplay(e.linkname))} is outside the layer`, { entry: bstrDisplay(e.name), code: 'LAYER_UNSAFE' });
        }
        const tparent = goDir(target) === '.' ? '' : goDir(target);
        await this.ensureDir(tparent, e.name, false);
        await this.flushIfPending(target);
        const tst = await this.exists(this.abs(target));
        if (tst === undefined) throw new LayerError(`hardlink target ${JSON.stringify(bstrDisplay(e.linkname))} does not exist`, { entry: bstrDisplay(e.name), code: 'LAYER_CORRUPT' });
        if (tst.isDirectory()) throw new LayerError(`hardlink target ${JSON.stringify(bstrDisplay(e.linkname))} is a directory`, { entry: bstrDisplay(e.name), code: 'LAYER_CORRUPT' });
        await link(this.abs(target), path);
        await data(undefined);
        await this.postOps({ path, rel, entry: e }, tst.isSymbolicLink());
        return;
      }
      case TYPE_SYMLINK:
        await symlink(bstrToBytes(e.linkname), path);
        await data(undefined);
        break;
      case TYPE_CHAR:
      case TYPE_BLOCK:
      case TYPE_FIFO:
        this.nodes.set(rel, {
          spec: { path, kind: e.typeflag === TYPE_FIFO ? 'p' : e.typeflag === TYPE_CHAR ? 'c' : 'b', major: e.devmajor, minor: e.devminor },
          post: { path, rel, entry: e },
          owner: { uid: e.uid, gid: e.gid },
        });
        await data(undefined);
        return;
      default:
        throw new LayerError(`unhandled tar header type ${e.typeflag.charCodeAt(0)} (${JSON.stringify(e.typeflag)})`, { entry: bstrDisplay(e.name), code: 'LAYER_CORRUPT' });
    }
    await this.postOps({ path, rel, entry: e });
  }

  /** lchown, xattrs (queued), chmod, times — moby createTarFile's tail. */
  private async postOps(p: PostOps, linkToSymlink = false): Promise<void> {
    const e = p.entry;
    await lchown(p.path, e.uid, e.gid);
    for (const [k, v] of e.xattrs) {
      if (isOverlayXattr(k)) continue; // only the layer's own whiteouts may set those
      this.xattrs.push({ rel: p.rel, path: p.path, name: k, value: bstrToBytes(v), fromWhiteout: false });
    }
    const mtime = e.mtime;
    const atime = e.atime === undefined || ts(e.atime) < ts(mtime) ? mtime : e.atime;
    if (e.typeflag === TYPE_SYMLINK) {
      await lutimes(p.path, ts(atime), ts(mtime));
      return;
    }
    if (e.typeflag === TYPE_LINK && linkToSymlink) return;
    await chmod(p.path, e.mode & 0o7777);
    if (e.typeflag === TYPE_DIR) {
      this.dirTimes.push({ rel: p.rel, path: p.path, entry: e });
      return;
    }
    await utimes(p.path, ts(clampEpoch(atime)), ts(clampEpoch(mtime)));
  }

  /** Pending nodes, then all xattrs in one setfattr, then directory times in archive order. */
  async finish(): Promise<void> {
    await this.flushNodes();
    // Opaque markers must stick (moby fails on them); archive xattrs tolerate ENOTSUP/EPERM.
    await writeXattrs(this.xattrs.filter((x) => x.fromWhiteout));
    await writeXattrs(this.xattrs.filter((x) => !x.fromWhiteout), { ignoreUnsupported: true });
    for (const d of this.dirTimes) {
      // The chain was checked at creation and only removePath can change it, which drops entries.
      const st = await this.exists(d.path);
      if (st === undefined || !st.isDirectory()) continue;
      const atime = d.entry.atime ?? { sec: 0, nsec: 0 };
      await utimes(d.path, ts(clampEpoch(atime)), ts(clampEpoch(d.entry.mtime)));
    }
  }
}

/** Parse a whole tar stream, recording its tar-split; extract each entry through `ex` if given. */
async function processTar(tar: NodeJS.ReadableStream, ex: Extractor | undefined): Promise<{ diffId: DiffId; tarSplit: Buffer; tarSize: number }> {
  const src = new ByteSource(await openInput(tar));
  const parser = new TarParser(src);
  const split = new TarSplitWriter();
  const seen = new Set<ByteString>();

  for (;;) {
    const e = await parser.next();
    split.addSegment(Buffer.concat(parser.raw));
    parser.raw = [];
    if (e === undefined) break;
    const key = goClean(e.name);
    if (seen.has(key)) throw new LayerError('duplicates of file paths not supported', { entry: bstrDisplay(e.name), code: 'LAYER_CORRUPT' });
    seen.add(key);

    const dataSize = isHeaderOnlyType(e.typeflag) || e.typeflag === TYPE_XGLOBAL ? 0 : e.size;
    const crc = new Crc64();
    let drained = false;
    const data = async (sink: ((b: Buffer) => Promise<void>) | undefined): Promise<void> => {
      drained = true;
      let left = dataSize;
      while (left > 0) {
        const b = await src.readSome(Math.min(left, DATA_CHUNK));
        if (b.length === 0) throw corrupt(`unexpected EOF: archive truncated (${left} bytes of file data missing)`, e.name);
        crc.update(b);
        if (sink !== undefined) await sink(b);
        left -= b.length;
      }
    };
    if (ex !== undefined) {
      try {
        await ex.extract(e, data);
      } catch (err) {
        if (err instanceof LayerError) throw err;
        throw new LayerError(`cannot extract: ${(err as Error).message}`, { entry: bstrDisplay(e.name), cause: err });
      }
    }
    if (!drained) await data(undefined);
    // tar-split records the header's size; the CRC covers the data actually present (none for
    // header-only types), and a global PAX header is an entry of size 0.
    const size = e.typeflag === TYPE_XGLOBAL ? 0 : e.size;
    split.addFile(e.name, size, size > 0 ? crc.digest() : null);
  }

  // Whatever follows the end-of-archive marker, in chunks, then tar-split's final empty segment.
  for (;;) {
    const b = await src.read(TRAILING_CHUNK);
    if (b.length === 0) break;
    split.addSegment(b);
  }
  split.addSegment(Buffer.alloc(0));
  const diffId = asDiffId(`sha256:${src.digest()}`);
  return { diffId, tarSplit: await split.finish(), tarSize: src.total };
}

/**
 * Read a layer tar (plain or gzip) without extracting it: the diffID of the uncompressed bytes, the
 * tar-split dockerd would register for it, and the uncompressed length. Same parsing and checks
 * as applyLayer (corrupt/truncated input and duplicate paths are errors).
 */
export async function splitTar(tar: NodeJS.ReadableStream, opts: ApplyLayerOptions = {}): Promise<{ diffId: DiffId; tarSplit: Buffer; tarSize: number }> {
  const r = await processTar(tar, undefined);
  checkDiffId(opts, r.diffId);
  return r;
}

function checkDiffId(opts: ApplyLayerOptions, diffId: DiffId): void {
  if (opts.expectDiffId !== undefined && opts.expectDiffId !== diffId) {
    throw new LayerError(`invalid diffID for layer: expected ${opts.expectDiffId}, got ${diffId}`, { code: 'LAYER_DIFFID' });
  }
}

/**
 * Extract the layer tar `tar` (plain or gzip) into `diffDir` (created if missing) — see the module
 * comment for the rules. Returns the diffID of the uncompressed bytes, the tar-split of the tar as
 * read, and the §1 size of diffDir.
 *
 * On error diffDir holds a partial extraction: the CALLER MUST REMOVE diffDir.
 */
export async function applyLayer(tar: NodeJS.ReadableStream, diffDir: string, opts: ApplyLayerOptions = {}): Promise<ApplyLayerResult> {
  await mkdir(resolve(diffDir), { recursive: true, mode: 0o755 });
  const root = await realpath(resolve(diffDir));
  const ex = new Extractor(root);
  const { diffId, tarSplit } = await processTar(tar, ex);
  try {
    await ex.finish();
  } catch (err) {
    if (err instanceof LayerError) throw err;
    throw new LayerError(`cannot finish extraction: ${(err as Error).message}`, { cause: err });
  }
  checkDiffId(opts, diffId);
  const size = await diffSize(root);
  return { diffId, tarSplit, size };
}
