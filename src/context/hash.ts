/**
 * The classic builder's content hash for COPY/ADD history (`file:<hex>`, `dir:<hex>`,
 * `multi:<hex>`; STORE-FORMAT §4).
 *
 * Per entry, tarsum v1: sha256 over the header fields `name`, `mode`, `uid`, `gid`, `size`,
 * `typeflag`, `linkname`, `uname`, `gname`, `devmajor`, `devminor` (each written as key then
 * value, no separators, no mtime), then the xattrs sorted by key (key then value), then the file
 * contents. Numbers are decimal. For the build context, uname/gname are always blank (the daemon's
 * tarsum blanks them), uid/gid are 0 (the CLI sends the context that way) and the mode is what the
 * client put in the tar: permission + setuid/setgid/sticky bits ('perm', current clients) or those
 * plus the file-type bits ('typed', the 20.10 CLI). Directories' names end in `/`.
 *
 * A single file source hashes as `file:` + its sum; a directory as `dir:` + sha256 of the sorted
 * sums of everything under it (itself included unless it is the context root) joined with `,`;
 * several sources as `multi:` + sha256 of their hashes, in source order, joined with `,`.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { byteCompare, type SourceEntry } from './tree.js';

export type ModeStyle = 'perm' | 'typed';

/** The header fields tarsum v1 hashes. */
export interface TarsumHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  xattrs?: ReadonlyMap<string, Buffer>;
}

const TYPE_BITS: Record<SourceEntry['type'], number> = {
  file: 0o100000,
  dir: 0o40000,
  symlink: 0o120000,
  char: 0o20000,
  block: 0o60000,
  fifo: 0o10000,
};

const TYPEFLAG: Record<SourceEntry['type'], string> = { file: '0', dir: '5', symlink: '2', char: '3', block: '4', fifo: '6' };

/** tarsum v1 header bytes (moby pkg/tarsum v1TarHeaderSelect + encodeHeader). */
export function tarsumHeaderBytes(h: TarsumHeader): Buffer {
  const parts: Buffer[] = [];
  const put = (k: string, v: string | Buffer): void => {
    parts.push(Buffer.from(k, 'utf8'), typeof v === 'string' ? Buffer.from(v, 'utf8') : v);
  };
  put('name', h.name);
  put('mode', String(h.mode));
  put('uid', String(h.uid));
  put('gid', String(h.gid));
  put('size', String(h.size));
  put('typeflag', h.typeflag);
  put('linkname', h.linkname);
  put('uname', h.uname);
  put('gname', h.gname);
  put('devmajor', String(h.devmajor));
  put('devminor', String(h.devminor));
  if (h.xattrs !== undefined) {
    const keys = [...h.xattrs.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const k of keys) put(k, h.xattrs.get(k) as Buffer);
  }
  return Buffer.concat(parts);
}

/** The header a source entry is hashed with. */
export function tarsumHeaderOf(e: SourceEntry, opts: { style: ModeStyle; context: boolean; uname?: string; gname?: string }): TarsumHeader {
  const isLink = opts.context && e.hardlinkTo !== undefined;
  const h: TarsumHeader = {
    name: e.type === 'dir' ? `${e.rel}/` : e.rel,
    mode: e.mode | (opts.style === 'typed' ? TYPE_BITS[e.type] : 0),
    uid: opts.context ? 0 : e.uid,
    gid: opts.context ? 0 : e.gid,
    size: e.type === 'file' && !isLink ? e.size : 0,
    typeflag: isLink ? '1' : TYPEFLAG[e.type],
    linkname: isLink ? (e.hardlinkTo as string) : (e.linkTarget ?? ''),
    uname: opts.context ? '' : (opts.uname ?? ''),
    gname: opts.context ? '' : (opts.gname ?? ''),
    devmajor: e.devMajor,
    devminor: e.devMinor,
  };
  if (e.capability !== undefined) h.xattrs = new Map([['security.capability', e.capability]]);
  return h;
}

const READ_CHUNK = 1 << 20;
/** One read buffer for every sum: the reads are synchronous, so never two at once. */
let readBuffer: Buffer | undefined;

/**
 * sha256 hex of a header followed by a file's contents (when given). The file is read with
 * synchronous calls (sys/yield.ts: an async read per small file costs more than hashing it);
 * callers looping over many files yield between them.
 */
export async function tarsum(h: TarsumHeader, contentPath?: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(tarsumHeaderBytes(h));
  if (contentPath !== undefined && h.size > 0) {
    const fd = openSync(contentPath, fsConstants.O_RDONLY);
    try {
      const buf = (readBuffer ??= Buffer.allocUnsafe(READ_CHUNK));
      // Never more than the header's size: the tar carries exactly that many bytes.
      for (let left = h.size; left > 0; ) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, left), null);
        if (n === 0) break;
        hash.update(n === buf.length ? buf : buf.subarray(0, n));
        left -= n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return hash.digest('hex');
}

/** The tarsum of one source entry (contents read from its disk path). */
export async function tarsumOfEntry(e: SourceEntry, opts: { style: ModeStyle; context: boolean; uname?: string; gname?: string }): Promise<string> {
  const h = tarsumHeaderOf(e, opts);
  return tarsum(h, h.typeflag === '0' ? e.diskPath : undefined);
}

/** hashStringSlice: `<prefix>:` + sha256 of the items joined with `,`. */
export function hashStringSlice(prefix: string, items: readonly string[]): string {
  return `${prefix}:${createHash('sha256').update(items.join(','), 'utf8').digest('hex')}`;
}

/** `dir:` hash of the per-entry sums of a directory walk (sorted, as Docker does). */
export function dirHash(sums: readonly string[]): string {
  // Below U+D800, UTF-16 order is UTF-8 byte order: the default sort (far cheaper) agrees.
  const plain = !/[\ud800-\uffff]/.test(sums.join(''));
  return hashStringSlice('dir', plain ? [...sums].sort() : [...sums].sort(byteCompare));
}

/** getSourceHashFromInfos: one source keeps its hash, several become `multi:`. */
export function combineSourceHashes(hashes: readonly string[]): string {
  if (hashes.length === 1) return hashes[0] as string;
  return hashStringSlice('multi', hashes);
}
