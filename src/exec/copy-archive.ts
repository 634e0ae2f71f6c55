/**
 * ADD of a local tar archive: detection (moby's isArchivePath: the stream, decompressed when it
 * starts with a gzip, bzip2 or xz magic, yields a first tar header) and extraction the way the
 * classic builder untars it (pkg/archive Unpack, chrooted into the destination): entries keep the
 * archive's uid/gid, permission bits, xattrs and mtimes, with no --chown fix-up; missing parents
 * are created 0755 root:root; an existing path is replaced unless both it and the entry are
 * directories; the destination is created 0755 root:root when missing.
 *
 * gzip uses zlib; bzip2, xz and zstd spawn `bzip2 -dc` / `xz -dc` / `zstd -dc` (packages bzip2,
 * xz-utils, zstd). zstd is BuildKit's addition: docker 20.10's classic builder copies a .tar.zst
 * as a file.
 */
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { createReadStream, type BigIntStats } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CopyError } from '../context/sources.js';
import { bstrToBytes, type ByteString } from '../layer/bytes.js';
import { makeNodes, writeXattrs, type XattrSet } from '../layer/host-tools.js';
import {
  BLOCK_SIZE,
  blockPadding,
  decodeHeaderBlock,
  isZeroBlock,
  PAX_SCHILY_XATTR,
  parsePaxRecords,
  parsePaxTime,
  type RawHeader,
} from '../layer/tar-header.js';
import { byteString, checkSymlink, entryRelPath, fsPath, hardlinkTarget, ParentDirs, quoted, resolveInDest } from './archive-paths.js';
import { hostPathOf, mkdirAllNew } from './copy-paths.js';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** archive.DetectCompression as docker 20.10 has it (no zstd). */
export function detectCompression(head: Uint8Array): Compression {
  const c = detectArchiveCompression(head);
  return c === 'zstd' ? 'none' : c;
}

/** What ADD unpacks: 20.10's compressions plus zstd (BuildKit's, and newer moby's). */
export function detectArchiveCompression(head: Uint8Array): Compression {
  const starts = (m: number[]): boolean => head.length >= m.length && m.every((b, i) => head[i] === b);
  if (starts([0x42, 0x5a, 0x68])) return 'bzip2';
  if (starts([0x1f, 0x8b, 0x08])) return 'gzip';
  if (starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (starts([0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  return 'none';
}

export interface ArchiveOptions {
  /** Spawns the bzip2/xz/zstd decompressors (injectable for tests). */
  spawn?: typeof nodeSpawn;
}

interface Decompressed {
  stream: AsyncIterable<Buffer>;
  /** Stops reading early (kills a helper process). */
  close(): void;
  /** Resolves when the helper exited cleanly; rejects with its stderr otherwise. */
  finished(): Promise<void>;
}

async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function decompressed(path: string, opts: ArchiveOptions): Promise<Decompressed> {
  const compression = detectArchiveCompression(await readHead(path, 10));
  const file = createReadStream(path);
  if (compression === 'none') return { stream: file, close: () => file.destroy(), finished: async () => undefined };
  if (compression === 'gzip') {
    const gz = createGunzip();
    file.on('error', (e) => gz.destroy(e));
    file.pipe(gz);
    return {
      stream: gz,
      close: () => {
        file.destroy();
        gz.destroy();
      },
      finished: async () => undefined,
    };
  }
  const tool = compression;
  const child: ChildProcess = (opts.spawn ?? nodeSpawn)(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (b: Buffer) => stderr.push(b));
  let killed = false;
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new CopyError('COPY', e.code === 'ENOENT' ? `${tool} not found: install it to ADD ${compression} archives` : `cannot run ${tool}: ${e.message}`, { cause: e })),
    );
    child.on('close', (code) => {
      if (code === 0 || killed) resolve();
      else reject(new CopyError('COPY', `${tool} -dc failed (exit ${code}): ${Buffer.concat(stderr).toString('utf8').trim()}`));
    });
  });
  exited.catch(() => undefined);
  child.stdin?.on('error', () => undefined);
  file.on('error', (e) => child.stdout?.destroy(e));
  if (child.stdin) file.pipe(child.stdin);
  return {
    stream: child.stdout as Readable,
    close: () => {
      killed = true;
      file.destroy();
      // An unread stdout would keep 'close' from ever firing.
      child.stdout?.destroy();
      child.stdin?.destroy();
      child.kill('SIGKILL');
    },
    finished: () => exited,
  };
}

/** Buffered reads of exact sizes over a chunk stream. */
class ByteReader {
  private chunks: Buffer[] = [];
  private len = 0;
  private ended = false;
  private readonly it: AsyncIterator<Buffer>;
  constructor(src: AsyncIterable<Buffer>) {
    this.it = src[Symbol.asyncIterator]();
  }
  private async fill(n: number): Promise<void> {
    while (this.len < n && !this.ended) {
      const r = await this.it.next();
      if (r.done === true) this.ended = true;
      else if (r.value.length > 0) {
        this.chunks.push(r.value);
        this.len += r.value.length;
      }
    }
  }
  /** Up to n bytes (fewer only at the end of the stream). */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const take = Math.min(n, all.length);
    const out = all.subarray(0, take);
    const rest = all.subarray(take);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.len = rest.length;
    return out;
  }
  /** Exactly n bytes as chunks; throws on a short stream. */
  async *chunksOf(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      const b = await this.read(Math.min(left, 1 << 20));
      if (b.length === 0) throw new CopyError('COPY', 'unexpected EOF in tar archive');
      left -= b.length;
      yield b;
    }
  }
  /** Read and drop everything up to the end of the stream. */
  async drain(): Promise<void> {
    this.chunks = [];
    this.len = 0;
    while (!this.ended) {
      const r = await this.it.next();
      if (r.done === true) this.ended = true;
    }
  }
  async skip(n: number): Promise<void> {
    for await (const _ of this.chunksOf(n)) {
      /* discard */
    }
  }
}

/** One archive entry after PAX and GNU long-name headers are merged (Go's tar.Reader.Next). */
export interface ArchiveEntry {
  typeflag: string;
  name: ByteString;
  linkname: ByteString;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  devmajor: number;
  devminor: number;
  xattrs: Map<ByteString, ByteString>;
}

class TarReader {
  private readonly r: ByteReader;
  private pending = 0;
  constructor(src: AsyncIterable<Buffer>) {
    this.r = new ByteReader(src);
  }

  /** The next entry, or undefined at the end; its data must be consumed with data() or is skipped. */
  async next(): Promise<ArchiveEntry | undefined> {
    if (this.pending > 0) {
      await this.r.skip(this.pending);
      this.pending = 0;
    }
    let pax: Map<ByteString, ByteString> | undefined;
    let longName: ByteString | undefined;
    let longLink: ByteString | undefined;
    for (;;) {
      const blk = await this.r.read(BLOCK_SIZE);
      if (blk.length === 0) return undefined;
      if (blk.length < BLOCK_SIZE) throw new CopyError('COPY', 'unexpected EOF in tar archive');
      if (isZeroBlock(blk)) {
        const blk2 = await this.r.read(BLOCK_SIZE);
        if (blk2.length === 0 || isZeroBlock(blk2)) return undefined;
        throw new CopyError('COPY', 'archive/tar: invalid tar header');
      }
      let h: RawHeader;
      try {
        h = decodeHeaderBlock(Buffer.from(blk));
      } catch (e) {
        throw new CopyError('COPY', `archive/tar: invalid tar header: ${(e as Error).message}`, { cause: e });
      }
      const padded = h.size + blockPadding(h.size);
      if (h.typeflag === 'x' || h.typeflag === 'g' || h.typeflag === 'L' || h.typeflag === 'K') {
        if (h.size > 1 << 20) throw new CopyError('COPY', 'archive/tar: header too large');
        const data = Buffer.concat(await collect(this.r.chunksOf(padded))).subarray(0, h.size);
        if (h.typeflag === 'x') pax = new Map([...(pax ?? []), ...parsePaxRecords(data)]);
        else if (h.typeflag === 'L') longName = cstr(data);
        else if (h.typeflag === 'K') longLink = cstr(data);
        continue; // 'g': global headers are ignored by Unpack
      }
      const e: ArchiveEntry = {
        typeflag: h.typeflag,
        name: longName ?? h.name,
        linkname: longLink ?? h.linkname,
        mode: h.mode,
        uid: h.uid,
        gid: h.gid,
        size: h.size,
        mtime: h.mtime,
        devmajor: h.devmajor,
        devminor: h.devminor,
        xattrs: new Map(),
      };
      for (const [k, v] of pax ?? []) {
        if (k === 'path') e.name = v;
        else if (k === 'linkpath') e.linkname = v;
        else if (k === 'uid' && /^\d+$/.test(v)) e.uid = Number(v);
        else if (k === 'gid' && /^\d+$/.test(v)) e.gid = Number(v);
        else if (k === 'size' && /^\d+$/.test(v)) e.size = Number(v);
        else if (k === 'mtime') {
          const t = parsePaxTime(v);
          e.mtime = t.sec + t.nsec / 1e9;
        } else if (k.startsWith(PAX_SCHILY_XATTR)) e.xattrs.set(k.slice(PAX_SCHILY_XATTR.length), v);
      }
      if (e.typeflag === '\0') e.typeflag = e.name.endsWith('/') ? '5' : '0';
      if (e.typeflag === '7') e.typeflag = '0';
      // Header-only types carry no data whatever their size field says (Go's reader).
      const n = ['1', '2', '3', '4', '5', '6'].includes(e.typeflag) ? 0 : e.size;
      this.dataLeft = n;
      this.pending = n + blockPadding(n);
      return e;
    }
  }

  private dataLeft = 0;

  /** Consume whatever follows the end-of-archive marker (so a decompressor can exit). */
  async drain(): Promise<void> {
    await this.r.drain();
  }

  /** The current entry's data. */
  async *data(): AsyncGenerator<Buffer> {
    const n = this.dataLeft;
    this.dataLeft = 0;
    if (n > 0) yield* this.r.chunksOf(n);
    this.pending -= n;
  }
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return out;
}

function cstr(b: Buffer): ByteString {
  const i = b.indexOf(0);
  return b.toString('latin1', 0, i >= 0 ? i : b.length);
}

/** moby's isArchivePath: the (decompressed) file starts with a readable tar header. */
export async function isTarArchive(path: string, opts: ArchiveOptions = {}): Promise<boolean> {
  let d: Decompressed;
  try {
    d = await decompressed(path, opts);
  } catch {
    return false;
  }
  try {
    const tr = new TarReader(d.stream);
    return (await tr.next()) !== undefined;
  } catch {
    return false;
  } finally {
    d.close();
    await d.finished().catch(() => undefined);
  }
}

async function lstatOrUndefined(p: string | Buffer): Promise<BigIntStats | undefined> {
  try {
    return await lstat(p, { bigint: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/**
 * Extract a local archive into `dest` (an absolute path inside `rootfs`, already resolved) like
 * the classic builder's ADD. Entries that would break out of the destination are refused, as
 * Unpack refuses them (see archive-paths.ts); the step's layer is then discarded by the caller.
 */
export async function extractArchive(archivePath: string, rootfs: string, dest: string, opts: ArchiveOptions = {}): Promise<void> {
  const destHost = dest === '/' ? rootfs : join(rootfs, dest);
  if ((await lstatOrUndefined(destHost)) === undefined) await mkdirAllNew(rootfs, dest, 0o755, { uid: 0, gid: 0 });
  const d = await decompressed(archivePath, opts);
  const dirs: Array<{ path: Buffer; mtime: number }> = [];
  const xattrs: XattrSet[] = [];
  // Byte strings from here on (see archive-paths.ts): tar names are not always UTF-8.
  const destBytes = byteString(destHost);
  const parents = new ParentDirs(destBytes);
  let rel = '';
  try {
    const tr = new TarReader(d.stream);
    for (;;) {
      const e = await tr.next();
      if (e === undefined) break;
      rel = entryRelPath(e.name);
      if (rel === '') continue; // the archive's root: the destination is kept as it is
      const linkname = e.linkname;
      if (e.typeflag === '2') checkSymlink(rel, linkname);
      const hardlink = e.typeflag === '1' ? hardlinkTarget(rel, linkname) : undefined;
      const parent = await parents.parentOf(rel);
      const base = rel.slice(rel.lastIndexOf('/') + 1);
      const inDest = parent === '/' ? `/${base}` : `${parent}/${base}`;
      const path = fsPath(hostPathOf(destBytes, inDest));

      const existing = await lstatOrUndefined(path);
      if (existing !== undefined && !(existing.isDirectory() && e.typeflag === '5')) {
        await rm(path, { recursive: true, force: true });
        parents.invalidate();
      }

      const mode = e.mode & 0o7777;
      switch (e.typeflag) {
        case '5':
          if (existing === undefined || !existing.isDirectory()) await mkdir(path, { mode: 0o700 });
          parents.noteDir(rel, inDest);
          break;
        case '0': {
          const fh = await open(path, 'wx', 0o600);
          try {
            for await (const chunk of tr.data()) await fh.write(chunk);
          } finally {
            await fh.close();
          }
          break;
        }
        case '1': {
          // link(2) follows symlinks on the way to the target but not the target itself, as os.Link.
          const slash = hardlink!.lastIndexOf('/');
          const dir = await resolveInDest(destBytes, hardlink!.slice(0, Math.max(1, slash)));
          const target = fsPath(hostPathOf(destBytes, `${dir}/${hardlink!.slice(slash + 1)}`));
          if ((await lstatOrUndefined(target)) === undefined) throw new CopyError('COPY', `archive entry ${quoted(rel)}: hardlink target ${quoted(hardlink!)} does not exist`);
          await link(target, path);
          break;
        }
        case '2':
          await symlink(fsPath(linkname), path);
          break;
        case '3':
        case '4':
        case '6':
          await makeNodes([{ path, kind: e.typeflag === '3' ? 'c' : e.typeflag === '4' ? 'b' : 'p', major: e.devmajor, minor: e.devminor }]);
          break;
        default:
          throw new CopyError('COPY', `unhandled tar header type ${e.typeflag.charCodeAt(0)}`);
      }
      await lchown(path, e.uid, e.gid);
      for (const [k, v] of e.xattrs) xattrs.push({ path, name: k, value: bstrToBytes(v) });
      if (xattrs.length > 0) await writeXattrs(xattrs.splice(0), { ignoreUnsupported: true });
      if (e.typeflag !== '2') await chmod(path, mode);
      if (e.typeflag === '5') dirs.push({ path, mtime: e.mtime });
      else if (e.typeflag === '2') await lutimes(path, e.mtime, e.mtime);
      else await utimes(path, e.mtime, e.mtime);
    }
    await tr.drain();
    await d.finished();
  } catch (e) {
    throw archiveError(e, archivePath, rel);
  } finally {
    d.close();
  }
  for (const dir of dirs) await utimes(dir.path, dir.mtime, dir.mtime);
}

/** Names the archive (and, for a system error, the entry) in what went wrong; hides the host path. */
function archiveError(e: unknown, archivePath: string, rel: string): unknown {
  const name = basename(archivePath);
  if (e instanceof CopyError) return new CopyError(e.code as never, `${name}: ${e.message}`, { cause: e });
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code !== 'string') return e;
  const why = err.code === 'ENAMETOOLONG' ? `the path is too long (${rel.length} bytes)` : `${err.code} (${err.syscall ?? 'unpack'})`;
  return new CopyError('COPY', `${name}: cannot unpack archive entry ${quoted(rel)}: ${why}`, { cause: e });
}
