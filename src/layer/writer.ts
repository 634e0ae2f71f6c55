/**
 * writeLayer: tar an overlay upper dir exactly as dockerd 20.10's overlay2 driver does (moby
 * pkg/archive TarWithOptions + the overlay whiteout converter, Go archive/tar Format=PAX) —
 * STORE-FORMAT.md §2 — while hashing the bytes (diffID) and building the tar-split (§3).
 *
 * - Pre-order walk, names sorted bytewise, root omitted, names relative, directories end in `/`.
 * - mode = permission + setuid/setgid/sticky + file-type bits; uid/gid from lstat; uname/gname from
 *   the NameLookup; mtime floored to seconds; devmajor/devminor of char/block devices.
 * - Hardlinks (non-dirs with nlink > 1): the first path seen is written normally, later ones as
 *   typeflag 1 with linkname = that first path and size 0.
 * - Char device 0/0 → regular file `<dir>/.wh.<name>`, mode 0600, size 0.
 * - Directory with `trusted.overlay.opaque=y` → its header, then `<dir>/.wh..wh..opq` (mode = dir
 *   mode & 0777, owner copied, mtime 0).
 * - Only the `security.capability` xattr is kept (a v3 value is rewritten as v2), as a PAX record.
 * - Sockets are skipped (moby logs and skips them).
 * Extended attributes for the whole tree come from ONE `getfattr -R` run (package `attr`).
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { asDiffId, type DiffId, EMPTY_LAYER_DIFF_ID } from '../image/digest.js';
import { type ByteString, bstrDisplay, bytesToBStr, goJoin, goSplit, utf8ToBStr } from './bytes.js';
import { Crc64 } from './crc64.js';
import { CRC_THREAD_CHUNK, CrcThread, type ThreadRead } from './crc64-thread.js';
import { ReadAhead } from './read-ahead.js';
import { LayerError } from './errors.js';
import { readXattrTree } from './host-tools.js';
import { SizeCounter } from './size.js';
import {
  blockPadding,
  encodeHeader,
  END_OF_ARCHIVE,
  MODE_ISBLK,
  MODE_ISCHR,
  MODE_ISDIR,
  MODE_ISFIFO,
  MODE_ISLNK,
  MODE_ISREG,
  type TarHeader,
  TYPE_BLOCK,
  TYPE_CHAR,
  TYPE_DIR,
  TYPE_FIFO,
  TYPE_LINK,
  TYPE_REG,
  TYPE_SYMLINK,
} from './tar-header.js';
import { TarSplitWriter } from './tar-split.js';
import { Pacer } from '../sys/yield.js';
import { hostNameLookup, type NameLookup } from './users.js';
import { opaqueXattr } from '../snapshot/overlay-xattrs.js';

export type { NameLookup } from './users.js';

export interface WriteLayerOptions {
  /** Receives the tar bytes (backpressure is honoured). It is not ended by writeLayer. */
  out?: NodeJS.WritableStream;
  /** uid/gid → names for uname/gname; default: the host's /etc/passwd and /etc/group. */
  users?: NameLookup;
}

export interface WriteLayerResult {
  /** sha256 of the exact tar bytes. */
  diffId: DiffId;
  /** Length of the tar in bytes. */
  tarSize: number;
  /** tar-split.json.gz contents. */
  tarSplit: Buffer;
  /** STORE-FORMAT §1 size (what dockerd records for the layer). */
  size: number;
  /** No entries: the tar is 1024 zero bytes and diffId is EMPTY_LAYER_DIFF_ID. */
  empty: boolean;
}

/** The opaque marker is trusted.overlay.opaque, or user.overlay.opaque in a user namespace (snapshot/overlay-xattrs.ts). */
const xattrPattern = () => `^(${opaqueXattr().replace(/\./g, '\\.')}|security\\.capability)$`;
const CAPS_XATTR = 'security.capability';
const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_OPAQUE = '.wh..wh..opq';
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const READ_CHUNK = 1 << 20;
const SLASH = Buffer.from('/');

/** Linux major/minor of a dev_t (golang.org/x/sys/unix Major/Minor). */
export function devMajor(dev: bigint): number {
  return Number(((dev & 0x00000000000fff00n) >> 8n) | ((dev & 0xfffff00000000000n) >> 32n));
}
export function devMinor(dev: bigint): number {
  return Number((dev & 0x00000000000000ffn) | ((dev & 0x00000ffffff00000n) >> 12n));
}

/** Floor of nanoseconds to whole seconds (moby: ModTime.Truncate(time.Second)). */
function floorSeconds(ns: bigint): number {
  let q = ns / 1_000_000_000n;
  if (ns % 1_000_000_000n < 0n) q -= 1n;
  return Number(q);
}

/** moby ReadSecurityXattrToTarHeader: a VFS_CAP_REVISION_3 value becomes revision 2 (20 bytes). */
export function capabilityForTar(value: Buffer): Buffer {
  if (value.length > 3 && value[3] === 3) {
    const v = Buffer.from(value.subarray(0, 20));
    v[3] = 2;
    return v;
  }
  return value;
}

class Sink {
  private readonly hash = createHash('sha256');
  private error: unknown;
  private readonly onError = (e: unknown): void => {
    this.error ??= e;
  };
  bytes = 0;

  constructor(private readonly out: NodeJS.WritableStream | undefined) {
    out?.on('error', this.onError);
  }

  /** Whether written buffers outlive write() (a stream consumer); without one they are only hashed. */
  get keepsChunks(): boolean {
    return this.out !== undefined;
  }

  async write(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    if (this.error !== undefined) throw new LayerError('writing the layer tar failed', { cause: this.error });
    this.hash.update(b);
    this.bytes += b.length;
    if (this.out !== undefined && !this.out.write(b)) await drained(this.out);
  }

  /** Stop listening for errors on `out` (the caller owns it again). */
  release(): void {
    this.out?.removeListener('error', this.onError);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Wait for 'drain'; a stream that errors or closes first fails the write. */
function drained(out: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: unknown): void => {
      out.removeListener('drain', onDrain);
      out.removeListener('close', onClose);
      out.removeListener('error', onError);
      if (err === undefined) resolve();
      else reject(new LayerError('writing the layer tar failed', { cause: err }));
    };
    const onDrain = (): void => done();
    const onClose = (): void => done(new Error('output stream closed'));
    const onError = (e: unknown): void => done(e);
    out.on('drain', onDrain);
    out.on('close', onClose);
    out.on('error', onError);
  });
}

/**
 * Tar the upper dir `dir` (see the module comment). Returns the diffID, tar length, gzipped
 * tar-split and §1 size; the tar itself goes to `opts.out` if given.
 */
export async function writeLayer(dir: string, opts: WriteLayerOptions = {}): Promise<WriteLayerResult> {
  const root = await realpath(resolve(dir)).catch((cause: unknown) => {
    throw new LayerError(`cannot read layer directory ${resolve(dir)}`, { cause });
  });
  const rootSt = await lstat(root);
  if (!rootSt.isDirectory()) throw new LayerError(`not a directory: ${root}`);
  const users = opts.users ?? hostNameLookup();
  const xattrs = await readXattrTree(root, xattrPattern());

  const sink = new Sink(opts.out);
  const split = new TarSplitWriter();
  const sizes = new SizeCounter();
  const firstLinks = new Map<string, ByteString>(); // dev:ino → first tar name
  const unames = new Map<number, ByteString>();
  const gnames = new Map<number, ByteString>();
  let pending: Buffer[] = []; // bytes since the last file's data: its padding + the next headers
  let entries = 0;

  const uname = (uid: number): ByteString => {
    let n = unames.get(uid);
    if (n === undefined) {
      n = utf8ToBStr(users.user(uid) ?? '');
      unames.set(uid, n);
    }
    return n;
  };
  const gname = (gid: number): ByteString => {
    let n = gnames.get(gid);
    if (n === undefined) {
      n = utf8ToBStr(users.group(gid) ?? '');
      gnames.set(gid, n);
    }
    return n;
  };

  /** Write a header (+ data for regular files: read ahead in `data`, else from `dataPath`) and record it in the tar-split. */
  const emit = async (h: TarHeader, format: 'pax' | 'any', dataPath?: Buffer, st?: BigIntStats, data?: Buffer): Promise<void> => {
    const blocks = encodeHeader(h, { format });
    pending.push(blocks);
    await sink.write(blocks);
    split.addSegment(Buffer.concat(pending));
    pending = [];
    let crc: Buffer | Promise<Buffer> | null = null;
    if (h.size > 0) {
      if (data !== undefined && data.length === h.size) {
        // Small files' CRCs go to the thread in batches too, once the layer has enough of them.
        dataBytes += data.length;
        if (dataBytes >= CRC_THREAD_AFTER && crcThread === undefined) startCrcThread();
        crc = crcThread && data.length <= CRC_THREAD_CHUNK ? crcThread.small(data) : new Crc64().update(data).digest();
        await crcThread?.drain();
        // `data` is a reused buffer: a consumer that keeps chunks gets its own copy.
        await sink.write(sink.keepsChunks ? Buffer.from(data) : data);
      } else {
        if (dataPath === undefined || st === undefined) throw new Error('internal: data without a path');
        // Large files: their CRC on a second core (see CRC_THREAD_AFTER).
        dataBytes += h.size;
        if (h.size >= CRC_THREAD_MIN_FILE && dataBytes >= CRC_THREAD_AFTER && crcThread === undefined) startCrcThread();
        crc = await copyFile(dataPath, st, h, sink, h.size >= CRC_THREAD_MIN_FILE ? readAhead : undefined);
      }
      const pad = blockPadding(h.size);
      if (pad > 0) {
        const zeros = Buffer.alloc(pad);
        pending.push(zeros);
        await sink.write(zeros);
      }
    }
    split.addFile(h.name, h.size, crc);
    entries++;
  };

  const addEntry = async (abs: Buffer, rel: ByteString, st: BigIntStats, data?: Buffer): Promise<void> => {
    const mode = Number(st.mode);
    let typeflag: string;
    let typeBits: number;
    let size = 0;
    let linkname: ByteString = '';
    let devmajor = 0;
    let devminor = 0;
    switch (mode & S_IFMT) {
      case S_IFREG:
        typeflag = TYPE_REG;
        typeBits = MODE_ISREG;
        size = Number(st.size);
        break;
      case S_IFDIR:
        typeflag = TYPE_DIR;
        typeBits = MODE_ISDIR;
        break;
      case S_IFLNK:
        typeflag = TYPE_SYMLINK;
        typeBits = MODE_ISLNK;
        linkname = bytesToBStr(readlinkSync(abs, { encoding: 'buffer' }));
        break;
      case S_IFCHR:
        typeflag = TYPE_CHAR;
        typeBits = MODE_ISCHR;
        devmajor = devMajor(st.rdev);
        devminor = devMinor(st.rdev);
        break;
      case S_IFBLK:
        typeflag = TYPE_BLOCK;
        typeBits = MODE_ISBLK;
        devmajor = devMajor(st.rdev);
        devminor = devMinor(st.rdev);
        break;
      case S_IFIFO:
        typeflag = TYPE_FIFO;
        typeBits = MODE_ISFIFO;
        break;
      default:
        return; // sockets: Go's FileInfoHeader refuses them and moby skips the file
    }
    sizes.add(st);
    const isDir = typeflag === TYPE_DIR;
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    const h: TarHeader = {
      typeflag,
      name: isDir ? `${rel}/` : rel,
      linkname,
      mode: (mode & 0o7777) | typeBits,
      uid,
      gid,
      size,
      mtime: floorSeconds(st.mtimeNs),
      uname: uname(uid),
      gname: gname(gid),
      devmajor,
      devminor,
    };
    const attrs = xattrs.get(rel);
    const caps = attrs?.get(CAPS_XATTR);
    if (caps !== undefined) h.xattrs = new Map([[CAPS_XATTR, bytesToBStr(capabilityForTar(caps))]]);

    if (!isDir && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = firstLinks.get(key);
      if (first !== undefined) {
        h.typeflag = TYPE_LINK;
        h.linkname = first;
        h.size = 0;
      } else {
        firstLinks.set(key, h.name);
      }
    }

    // Overlay whiteout: char device 0/0 → empty regular file .wh.<name>.
    if ((mode & S_IFMT) === S_IFCHR && devmajor === 0 && devminor === 0) {
      const [d, f] = goSplit(h.name);
      h.name = goJoin(d, WHITEOUT_PREFIX + f);
      h.mode = 0o600;
      h.typeflag = TYPE_REG;
      h.size = 0;
    }

    await emit(h, 'pax', abs, st, h.typeflag === TYPE_REG ? data : undefined);

    const opaque = isDir ? attrs?.get(opaqueXattr()) : undefined;
    if (opaque !== undefined && opaque.length === 1 && opaque[0] === 0x79 /* 'y' */) {
      await emit(
        {
          typeflag: TYPE_REG,
          name: goJoin(h.name, WHITEOUT_OPAQUE),
          linkname: '',
          mode: h.mode & 0o777,
          uid: h.uid,
          gid: h.gid,
          size: 0,
          mtime: 0,
          uname: h.uname,
          gname: h.gname,
          devmajor: 0,
          devminor: 0,
        },
        'any',
      );
    }
  };

  let crcThread: CrcThread | null | undefined;
  // Large files are read on the thread (and ahead) unless something downstream keeps the chunks.
  let readAhead: ReadAhead | undefined;
  const startCrcThread = (): void => {
    crcThread = CrcThread.start() ?? null;
    if (crcThread !== null && !sink.keepsChunks) readAhead = new ReadAhead(crcThread);
  };
  let dataBytes = 0;
  const pacer = new Pacer();
  // Synchronous syscalls (sys/yield.ts): the tar is written in order anyway, and an async lstat,
  // open or read per small file cost more than hashing the file.
  const walk = async (absDir: Buffer, relDir: ByteString): Promise<void> => {
    const names = readdirSync(absDir, { encoding: 'buffer' });
    names.sort(Buffer.compare);
    const absOf = (i: number): Buffer => Buffer.concat([absDir, SLASH, names[i] as Buffer]);
    // Entries after the current one already lstat'ed (read-ahead), by index.
    const ahead = new Map<number, BigIntStats>();
    let scanned = 0;
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as Buffer;
      await pacer.tick();
      const abs = absOf(i);
      const rel = relDir === '' ? bytesToBStr(name) : `${relDir}/${bytesToBStr(name)}`;
      const st = ahead.get(i) ?? lstatSync(abs, { bigint: true });
      ahead.set(i, st);
      if (readAhead !== undefined) {
        // This and the next large files of this directory (up to its next subdirectory, whose files come first).
        for (scanned = Math.max(scanned, i); scanned < Math.min(names.length, i + READ_AHEAD_SCAN) && readAhead.started < READ_AHEAD_FILES; scanned++) {
          let next = ahead.get(scanned);
          if (next === undefined) ahead.set(scanned, (next = lstatSync(absOf(scanned), { bigint: true })));
          if (next.isDirectory()) break;
          if (readOnThread(next)) readAhead.start(absOf(scanned), next);
        }
      }
      ahead.delete(i);
      try {
        await addEntry(abs, rel, st, readSmall(abs, st));
      } catch (e) {
        if (e instanceof LayerError) throw e;
        throw new LayerError(`cannot add to layer: ${(e as Error).message}`, { entry: bstrDisplay(rel), cause: e });
      }
      if (st.isDirectory()) await walk(abs, rel);
    }
  };

  let tarSplit: Buffer;
  try {
    try {
      await walk(Buffer.from(root, 'utf8'), '');
      pending.push(END_OF_ARCHIVE);
      await sink.write(END_OF_ARCHIVE);
    } finally {
      sink.release();
    }
    split.addSegment(Buffer.concat(pending));
    split.addSegment(Buffer.alloc(0));
    crcThread?.flush();
    tarSplit = await split.finish();
  } finally {
    await readAhead?.stopAll();
    await crcThread?.stop();
  }
  const diffId = asDiffId(`sha256:${sink.digest()}`);
  if (entries === 0 && diffId !== EMPTY_LAYER_DIFF_ID) throw new Error('internal: empty layer digest mismatch');
  return { diffId, tarSize: sink.bytes, tarSplit, size: sizes.total, empty: entries === 0 };
}

/** Files at least this large have their CRC computed on the CRC thread. */
const CRC_THREAD_MIN_FILE = 1 << 20;
/**
 * The thread starts once the layer has this much file data (its start costs ≈ 20 ms, the CRC of
 * 16 MiB inline ≈ 12 ms); smaller files' CRCs then go to it too, in batches.
 */
const CRC_THREAD_AFTER = 16 << 20;
/** Large files of a directory read ahead on the CRC thread: at most this many, among this many next entries. */
const READ_AHEAD_FILES = 2;
const READ_AHEAD_SCAN = 8;
/** Files up to this size are read whole, in one read, into one reused buffer. */
const SMALL_FILE = 1 << 20;
let smallBuffer: Buffer | undefined;

/** Whether copyFile would read this entry on the CRC thread (a later hard link has no data to read). */
function readOnThread(st: BigIntStats): boolean {
  return st.isFile() && st.nlink === 1n && st.size > BigInt(SMALL_FILE) && st.size >= BigInt(CRC_THREAD_MIN_FILE);
}

/**
 * A small unshared regular file's bytes (a view of a shared buffer, valid until the next call),
 * when it is exactly `st.size` bytes and the same inode; else undefined and the writer streams
 * the file itself, reporting what is wrong.
 */
function readSmall(path: Buffer, st: BigIntStats): Buffer | undefined {
  const size = Number(st.size);
  if (!st.isFile() || size === 0 || size > SMALL_FILE || st.nlink > 1n) return undefined;
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const fst = fstatSync(fd, { bigint: true });
    if (fst.ino !== st.ino || fst.dev !== st.dev) return undefined;
    const buf = (smallBuffer ??= Buffer.allocUnsafe(SMALL_FILE + 1));
    let got = 0;
    for (;;) {
      const n = readSync(fd, buf, got, size + 1 - got, null);
      if (n === 0) break;
      got += n;
      if (got > size) return undefined;
    }
    return got === size ? buf.subarray(0, size) : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** copyFile's threaded half: the chunks the thread read, hashed in order; the file stays open until it is done. */
async function copyOnThread(reading: ThreadRead, h: TarHeader, sink: Sink): Promise<Buffer> {
  try {
    for (let chunk = await reading.next(); chunk !== null; chunk = await reading.next()) {
      try {
        await sink.write(chunk.data);
      } finally {
        reading.release(chunk);
      }
    }
  } finally {
    reading.cancel();
    await reading.done.catch(() => undefined);
  }
  const end = await reading.done;
  if ('crc' in end) return end.crc;
  if ('missing' in end) throw new LayerError(`file shrank while archiving (${end.missing} bytes missing)`, { entry: bstrDisplay(h.name) });
  if ('grew' in end) throw new LayerError('file grew while archiving', { entry: bstrDisplay(h.name) });
  if ('error' in end) throw new LayerError(`cannot read file: ${end.error}`, { entry: bstrDisplay(h.name) });
  throw new Error('internal: a thread read cancelled while still wanted');
}

/** read(2) until `buf` is full; throws when the file ends first. */
function readFully(fd: number, buf: Buffer, at: number, name: ByteString): void {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, at + got);
    if (n === 0) throw new LayerError(`file shrank while archiving (${buf.length - got} bytes missing)`, { entry: bstrDisplay(name) });
    got += n;
  }
}

/**
 * Streams a regular file's `h.size` bytes into the sink (never following a symlink) and returns its
 * CRC-64. With `reads` the CRC thread reads the file (or has already started: ReadAhead) and
 * computes the CRC, and this thread only hashes.
 */
async function copyFile(path: Buffer, st: BigIntStats, h: TarHeader, sink: Sink, reads?: ReadAhead): Promise<Buffer> {
  const started = await reads?.take(path);
  const fd = started?.fd ?? openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    // A started read's file was checked when it was opened (ReadAhead.start).
    if (started === undefined) {
      const fst = fstatSync(fd, { bigint: true });
      if (fst.ino !== st.ino || fst.dev !== st.dev) throw new LayerError('file was replaced while archiving', { entry: bstrDisplay(h.name) });
    }
    if (reads !== undefined) return await copyOnThread(started?.reading ?? reads.read(fd, h.size), h, sink);
    let crc: Crc64 | undefined;
    const own = Buffer.allocUnsafe(Math.min(READ_CHUNK, h.size));
    for (let at = 0; at < h.size; ) {
      const chunk = own.subarray(0, Math.min(READ_CHUNK, h.size - at));
      readFully(fd, chunk, at, h.name);
      at += chunk.length;
      (crc ??= new Crc64()).update(chunk);
      // A consumer may hold on to the chunk while `own` is reused: it gets a copy.
      await sink.write(sink.keepsChunks ? Buffer.from(chunk) : chunk);
    }
    if (readSync(fd, Buffer.alloc(1), 0, 1, h.size) !== 0) throw new LayerError('file grew while archiving', { entry: bstrDisplay(h.name) });
    return (crc ?? new Crc64()).digest();
  } finally {
    closeSync(fd);
  }
}
