/**
 * Tar header blocks, encoded exactly as Go's archive/tar Writer does with `Format = FormatPAX` (what
 * moby's pkg/archive sets): plain USTAR unless a field needs PAX, then one `x` header
 * (`<dir>/PaxHeaders.0/<base>`, records sorted by key) followed by the main header with the same
 * USTAR magic. Also decoding of single header blocks and PAX records for the reader (USTAR, PAX,
 * GNU, STAR and V7 blocks; octal and base-256 numbers).
 *
 * All names and string fields are byte strings (see bytes.ts).
 */
import { type ByteString, bstrDisplay, goJoin, goSplit, isAsciiBStr, toAsciiBStr } from './bytes.js';
import { LayerError } from './errors.js';

export const BLOCK_SIZE = 512;

export const TYPE_REG = '0';
export const TYPE_REGA = '\0';
export const TYPE_LINK = '1';
export const TYPE_SYMLINK = '2';
export const TYPE_CHAR = '3';
export const TYPE_BLOCK = '4';
export const TYPE_DIR = '5';
export const TYPE_FIFO = '6';
export const TYPE_CONT = '7';
export const TYPE_XHEADER = 'x';
export const TYPE_XGLOBAL = 'g';
export const TYPE_GNU_SPARSE = 'S';
export const TYPE_GNU_LONGNAME = 'L';
export const TYPE_GNU_LONGLINK = 'K';

/** File-type bits moby adds to the tar mode (fillGo18FileTypeBits). */
export const MODE_ISREG = 0o100000;
export const MODE_ISDIR = 0o40000;
export const MODE_ISLNK = 0o120000;
export const MODE_ISCHR = 0o20000;
export const MODE_ISBLK = 0o60000;
export const MODE_ISFIFO = 0o10000;

/** The fields tsbuild writes. Strings are byte strings; mtime is whole seconds. */
export interface TarHeader {
  typeflag: string;
  name: ByteString;
  linkname: ByteString;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  uname: ByteString;
  gname: ByteString;
  devmajor: number;
  devminor: number;
  /** Extended attributes (name → value, byte strings), written as `SCHILY.xattr.<name>` PAX records. */
  xattrs?: ReadonlyMap<ByteString, ByteString> | undefined;
}

/** Types that never carry data, whatever their size field says (archive/tar isHeaderOnlyType). */
export function isHeaderOnlyType(flag: string): boolean {
  return flag === TYPE_LINK || flag === TYPE_SYMLINK || flag === TYPE_CHAR || flag === TYPE_BLOCK || flag === TYPE_DIR || flag === TYPE_FIFO;
}

/** Zero bytes needed after `size` bytes of data to reach a block boundary. */
export function blockPadding(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}

// ---------------------------------------------------------------------------------------------
// Field layout
const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
  // GNU
  gnuAtime: [345, 12],
  gnuCtime: [357, 12],
  // STAR
  starPrefix: [345, 131],
  starAtime: [476, 12],
  starCtime: [488, 12],
  starTrailer: [508, 4],
} as const satisfies Record<string, readonly [number, number]>;
type Field = keyof typeof F;

const NAME_SIZE = 100;
const PREFIX_SIZE = 155;
const MAX_SPECIAL_FILE_SIZE = 1 << 20;

const MAGIC_USTAR = 'ustar\0';
const VERSION_USTAR = '00';
const MAGIC_GNU = 'ustar ';
const VERSION_GNU = ' \0';
const TRAILER_STAR = 'tar\0';

const PAX_PATH = 'path';
const PAX_LINKPATH = 'linkpath';
const PAX_UNAME = 'uname';
const PAX_GNAME = 'gname';
const PAX_UID = 'uid';
const PAX_GID = 'gid';
const PAX_SIZE = 'size';
const PAX_MTIME = 'mtime';
const PAX_ATIME = 'atime';
const PAX_CTIME = 'ctime';
export const PAX_SCHILY_XATTR = 'SCHILY.xattr.';
const PAX_NONE = '';

// ---------------------------------------------------------------------------------------------
// Encoding

/** archive/tar fitsInOctal: x fits an n-byte field as octal digits plus a NUL. */
function fitsInOctal(n: number, x: number): boolean {
  return x >= 0 && (n >= 22 || x < 8 ** (n - 1));
}

/** archive/tar formatter.formatString on a block field. */
function putString(blk: Buffer, field: Field, s: ByteString): void {
  const [off, len] = F[field];
  const n = Math.min(len, s.length);
  // Byte by byte (a ByteString's code units are bytes): cheaper than a latin1 write per field.
  for (let i = 0; i < n; i++) blk[off + i] = s.charCodeAt(i);
  if (s.length < len) blk[off + s.length] = 0;
  // Some readers take a trailing slash in a truncated name as a directory; Go replaces it by NUL.
  if (s.length > len && blk[off + len - 1] === 0x2f) {
    let t = s.slice(0, len);
    while (t.endsWith('/')) t = t.slice(0, -1);
    blk[off + t.length] = 0;
  }
}

/** archive/tar formatter.formatOctal: zero-padded octal, NUL-terminated; 0 if it does not fit. */
function putOctal(blk: Buffer, field: Field, x: number, len: number = F[field][1]): void {
  const [off] = F[field];
  const v = fitsInOctal(len, x) ? x : 0;
  const digits = v.toString(8);
  // Zero-padded to len - 1 digits (never cut: v fits), then the NUL.
  const pad = Math.max(0, len - 1 - digits.length);
  for (let i = 0; i < pad; i++) blk[off + i] = 0x30;
  const n = Math.min(len - pad, digits.length);
  for (let i = 0; i < n; i++) blk[off + pad + i] = digits.charCodeAt(i);
  if (pad + digits.length < len) blk[off + pad + digits.length] = 0;
}

function setFormatAndChecksum(blk: Buffer, withMagic: boolean): void {
  if (withMagic) {
    blk.write(MAGIC_USTAR, F.magic[0], 6, 'latin1');
    blk.write(VERSION_USTAR, F.version[0], 2, 'latin1');
  }
  // The checksum field counts as eight spaces.
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += blk[i] as number;
  for (let i = 156; i < BLOCK_SIZE; i++) sum += blk[i] as number;
  putOctal(blk, 'chksum', sum, 7); // 6 digits + NUL
  blk[155] = 0x20;
}

/** archive/tar splitUSTARPath. */
export function splitUstarPath(name: ByteString): [prefix: ByteString, suffix: ByteString] | undefined {
  let length = name.length;
  if (length <= NAME_SIZE || !isAsciiBStr(name)) return undefined;
  if (length > PREFIX_SIZE + 1) length = PREFIX_SIZE + 1;
  else if (name[length - 1] === '/') length--;
  const i = name.slice(0, length).lastIndexOf('/');
  const nlen = name.length - i - 1;
  const plen = i;
  if (i <= 0 || nlen > NAME_SIZE || nlen === 0 || plen > PREFIX_SIZE) return undefined;
  return [name.slice(0, i), name.slice(i + 1)];
}

/** archive/tar formatPAXRecord: `"<len> k=v\n"` where len counts itself. */
export function formatPaxRecord(k: ByteString, v: ByteString): ByteString {
  const padding = 3;
  let size = k.length + v.length + padding;
  size += String(size).length;
  let record = `${size} ${k}=${v}\n`;
  if (record.length !== size) {
    size = record.length;
    record = `${size} ${k}=${v}\n`;
  }
  return record;
}

function validPaxRecord(k: string, v: string): boolean {
  if (k === '' || k.includes('=')) return false;
  switch (k) {
    case PAX_PATH:
    case PAX_LINKPATH:
    case PAX_UNAME:
    case PAX_GNAME:
      return !v.includes('\0');
    default:
      return !k.includes('\0');
  }
}

/** Fill the V7 + USTAR common fields (archive/tar templateV7Plus). */
function templateV7Plus(h: TarHeader, str: (s: ByteString) => ByteString): Buffer {
  const blk = Buffer.alloc(BLOCK_SIZE);
  blk.write(h.typeflag, F.typeflag[0], 1, 'latin1');
  putString(blk, 'name', str(h.name));
  putString(blk, 'linkname', str(h.linkname));
  putOctal(blk, 'mode', h.mode);
  putOctal(blk, 'uid', h.uid);
  putOctal(blk, 'gid', h.gid);
  putOctal(blk, 'size', h.size);
  putOctal(blk, 'mtime', h.mtime);
  putString(blk, 'uname', str(h.uname));
  putString(blk, 'gname', str(h.gname));
  putOctal(blk, 'devmajor', h.devmajor);
  putOctal(blk, 'devminor', h.devminor);
  return blk;
}

/** The PAX extended header file (archive/tar writeRawFile): name, zero mode/ids/mtime, the data size. */
function paxRawFile(realName: ByteString, data: ByteString): Buffer {
  const [dir, file] = goSplit(realName);
  let name = toAsciiBStr(goJoin(dir, 'PaxHeaders.0', file));
  if (name.length > NAME_SIZE) name = name.slice(0, NAME_SIZE);
  while (name.endsWith('/')) name = name.slice(0, -1);
  const blk = Buffer.alloc(BLOCK_SIZE);
  blk.write(TYPE_XHEADER, F.typeflag[0], 1, 'latin1');
  putString(blk, 'name', name);
  putOctal(blk, 'mode', 0);
  putOctal(blk, 'uid', 0);
  putOctal(blk, 'gid', 0);
  putOctal(blk, 'size', data.length);
  putOctal(blk, 'mtime', 0);
  setFormatAndChecksum(blk, true);
  const body = Buffer.alloc(data.length + blockPadding(data.length));
  body.write(data, 0, data.length, 'latin1');
  return Buffer.concat([blk, body]);
}

/**
 * Encode the header block(s) for one entry, as Go's `tar.Writer.WriteHeader` does for a Header with
 * `Format: FormatPAX` (moby) — or, with `format: 'any'`, for an unspecified format (moby's opaque
 * whiteout headers); the two only differ for headers PAX cannot hold, which tsbuild never writes.
 * Returns 512 bytes (USTAR) or the PAX header, its records and the main header.
 */
export function encodeHeader(h: TarHeader, opts?: { format?: 'pax' | 'any' }): Buffer {
  const pax = new Map<string, ByteString>();
  let ustarOk = true;
  let paxOk = true;
  const why: string[] = [];

  const verifyString = (s: ByteString, size: number, field: string, paxKey: string): void => {
    const tooLong = s.length > size;
    if (!isAsciiBStr(s) || tooLong) {
      if (paxKey !== PAX_PATH || splitUstarPath(s) === undefined) {
        ustarOk = false;
      }
      if (paxKey === PAX_NONE) {
        paxOk = false;
        why.push(`cannot encode ${field}`);
      } else {
        pax.set(paxKey, s);
      }
    }
  };
  const verifyNumeric = (n: number, size: number, field: string, paxKey: string): void => {
    if (!Number.isSafeInteger(n)) throw new LayerError(`tar header: ${field} ${n} is not an integer`, { entry: bstrDisplay(h.name), code: 'LAYER_CORRUPT' });
    if (!fitsInOctal(size, n)) {
      ustarOk = false;
      if (paxKey === PAX_NONE) {
        paxOk = false;
        why.push(`cannot encode ${field}=${n}`);
      } else {
        pax.set(paxKey, String(n));
      }
    }
  };

  verifyString(h.name, F.name[1], 'Name', PAX_PATH);
  verifyString(h.linkname, F.linkname[1], 'Linkname', PAX_LINKPATH);
  verifyString(h.uname, F.uname[1], 'Uname', PAX_UNAME);
  verifyString(h.gname, F.gname[1], 'Gname', PAX_GNAME);
  verifyNumeric(h.mode, F.mode[1], 'Mode', PAX_NONE);
  verifyNumeric(h.uid, F.uid[1], 'Uid', PAX_UID);
  verifyNumeric(h.gid, F.gid[1], 'Gid', PAX_GID);
  verifyNumeric(h.size, F.size[1], 'Size', PAX_SIZE);
  verifyNumeric(h.devmajor, F.devmajor[1], 'Devmajor', PAX_NONE);
  verifyNumeric(h.devminor, F.devminor[1], 'Devminor', PAX_NONE);
  // verifyTime, for whole seconds: an mtime outside 11 octal digits (negative, or after 2242) goes
  // into a PAX record and rules USTAR out.
  if (!Number.isSafeInteger(h.mtime)) throw new LayerError(`tar header: mtime ${h.mtime} is not an integer`, { entry: bstrDisplay(h.name), code: 'LAYER_CORRUPT' });
  if (!fitsInOctal(F.mtime[1], h.mtime)) {
    ustarOk = false;
    pax.set(PAX_MTIME, String(h.mtime));
  }

  if ((h.typeflag === TYPE_REG || h.typeflag === TYPE_CHAR || h.typeflag === TYPE_BLOCK || h.typeflag === TYPE_FIFO) && h.name.endsWith('/')) {
    throw new LayerError('tar header: filename may not have trailing slash', { entry: bstrDisplay(h.name), code: 'LAYER_CORRUPT' });
  }
  if (h.size < 0) throw new LayerError('tar header: negative size', { entry: bstrDisplay(h.name), code: 'LAYER_CORRUPT' });

  if (h.xattrs !== undefined && h.xattrs.size > 0) {
    for (const [k, v] of h.xattrs) pax.set(PAX_SCHILY_XATTR + k, v);
    ustarOk = false; // only PAX supports xattrs
  }
  for (const [k, v] of pax) {
    if (!validPaxRecord(k, v)) throw new LayerError(`tar header: invalid PAX record ${JSON.stringify(k)}`, { entry: bstrDisplay(h.name), code: 'LAYER_CORRUPT' });
  }
  void opts; // 'pax' and 'any' pick USTAR first, then PAX; GNU (only reachable with 'any') is never needed.

  if (ustarOk) {
    let name = h.name;
    let prefix = '';
    const split = splitUstarPath(h.name);
    if (split !== undefined) [prefix, name] = split;
    const blk = templateV7Plus({ ...h, name }, (s) => s);
    putString(blk, 'prefix', prefix);
    setFormatAndChecksum(blk, true);
    return blk;
  }
  if (!paxOk) {
    throw new LayerError(`tar header: no format can encode this entry (${why.join(', ')})`, { entry: bstrDisplay(h.name), code: 'LAYER_CORRUPT' });
  }
  const keys = [...pax.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let data = '';
  for (const k of keys) data += formatPaxRecord(k, pax.get(k) as string);
  if (data.length > MAX_SPECIAL_FILE_SIZE) throw new LayerError('tar header: PAX records too long', { entry: bstrDisplay(h.name), code: 'LAYER_CORRUPT' });
  const main = templateV7Plus(h, toAsciiBStr);
  setFormatAndChecksum(main, true);
  return Buffer.concat([paxRawFile(h.name, data), main]);
}

/** 1024 zero bytes: the end-of-archive marker Go's Writer.Close writes. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK_SIZE);

// ---------------------------------------------------------------------------------------------
// Decoding

/** A corrupt header; the reader turns it into a LayerError naming the entry. */
export class TarFormatError extends Error {}

export type BlockFormat = 'v7' | 'ustar' | 'gnu' | 'star';

/** One header block as archive/tar readHeader returns it (before PAX / GNU long-name merging). */
export interface RawHeader {
  format: BlockFormat;
  typeflag: string;
  name: ByteString;
  linkname: ByteString;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  uname: ByteString;
  gname: ByteString;
  devmajor: number;
  devminor: number;
}

export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function field(b: Buffer, f: Field): Buffer {
  const [off, len] = F[f];
  return b.subarray(off, off + len);
}

/** NUL-terminated string (archive/tar parser.parseString). */
function cString(b: Buffer): ByteString {
  const i = b.indexOf(0);
  return b.toString('latin1', 0, i >= 0 ? i : b.length);
}

/** archive/tar parser.parseOctal. */
function parseOctal(b: Buffer): number {
  let s = b.toString('latin1');
  s = s.replace(/^[ \0]+/, '').replace(/[ \0]+$/, '');
  if (s === '') return 0;
  const nul = s.indexOf('\0');
  if (nul >= 0) s = s.slice(0, nul);
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`invalid octal number ${JSON.stringify(s)}`);
  const v = parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw new TarFormatError(`number out of range ${JSON.stringify(s)}`);
  return v;
}

/** archive/tar parser.parseNumeric: base-256 when the high bit is set, else octal. */
export function parseNumeric(b: Buffer): number {
  if (b.length > 0 && ((b[0] as number) & 0x80) !== 0) {
    const inv = ((b[0] as number) & 0x40) !== 0 ? 0xff : 0;
    let x = 0n;
    for (let i = 0; i < b.length; i++) {
      let c = (b[i] as number) ^ inv;
      if (i === 0) c &= 0x7f;
      if (x >> 56n > 0n) throw new TarFormatError('base-256 number overflows');
      x = (x << 8n) | BigInt(c);
    }
    if (x >> 63n > 0n) throw new TarFormatError('base-256 number overflows');
    const v = inv === 0xff ? -x - 1n : x;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new TarFormatError('number out of range');
    return Number(v);
  }
  return parseOctal(b);
}

/**
 * Decode one non-zero header block (archive/tar readHeader): verifies the checksum (unsigned or
 * signed sum), detects the format from the magic, joins the USTAR prefix.
 */
export function decodeHeaderBlock(blk: Buffer): RawHeader {
  if (blk.length !== BLOCK_SIZE) throw new TarFormatError('short header block');
  const stored = parseOctal(field(blk, 'chksum'));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : (blk[i] as number);
    unsigned += c;
    signed += c >= 0x80 ? c - 0x100 : c;
  }
  if (stored !== unsigned && stored !== signed) throw new TarFormatError('invalid tar header (checksum mismatch)');

  const magic = field(blk, 'magic').toString('latin1');
  const version = field(blk, 'version').toString('latin1');
  const trailer = field(blk, 'starTrailer').toString('latin1');
  let format: BlockFormat;
  if (magic === MAGIC_USTAR && trailer === TRAILER_STAR) format = 'star';
  else if (magic === MAGIC_USTAR) format = 'ustar';
  else if (magic === MAGIC_GNU && version === VERSION_GNU) format = 'gnu';
  else format = 'v7';

  const h: RawHeader = {
    format,
    typeflag: String.fromCharCode(blk[156] as number),
    name: cString(field(blk, 'name')),
    linkname: cString(field(blk, 'linkname')),
    size: parseNumeric(field(blk, 'size')),
    mode: parseNumeric(field(blk, 'mode')),
    uid: parseNumeric(field(blk, 'uid')),
    gid: parseNumeric(field(blk, 'gid')),
    mtime: parseNumeric(field(blk, 'mtime')),
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  };
  if (format !== 'v7') {
    h.uname = cString(field(blk, 'uname'));
    h.gname = cString(field(blk, 'gname'));
    h.devmajor = parseNumeric(field(blk, 'devmajor'));
    h.devminor = parseNumeric(field(blk, 'devminor'));
    let prefix = '';
    if (format === 'ustar') {
      prefix = cString(field(blk, 'prefix'));
    } else if (format === 'star') {
      prefix = cString(field(blk, 'starPrefix'));
    } else {
      // GNU: atime/ctime live where USTAR has its prefix. Go reads the prefix instead when those do
      // not parse (archives written by Go < 1.8).
      try {
        if (blk[F.gnuAtime[0]] !== 0) parseNumeric(field(blk, 'gnuAtime'));
        if (blk[F.gnuCtime[0]] !== 0) parseNumeric(field(blk, 'gnuCtime'));
      } catch {
        const p = cString(field(blk, 'prefix'));
        if (isAsciiBStr(p)) prefix = p;
      }
    }
    if (prefix.length > 0) h.name = `${prefix}/${h.name}`;
  }
  return h;
}

/**
 * Parse the body of a PAX `x`/`g` header (archive/tar parsePAX / parsePAXRecord). Records are kept
 * in a map (a later duplicate wins). GNU sparse 0.0 offset/numbytes records are collected into
 * `GNU.sparse.map` like Go does.
 */
export function parsePaxRecords(data: Buffer): Map<ByteString, ByteString> {
  const out = new Map<ByteString, ByteString>();
  const sparse: string[] = [];
  let s = data.toString('latin1');
  while (s.length > 0) {
    const sp = s.indexOf(' ');
    if (sp < 0) throw new TarFormatError('invalid PAX record');
    const nStr = s.slice(0, sp);
    if (!/^[+-]?\d+$/.test(nStr)) throw new TarFormatError('invalid PAX record length');
    const n0 = parseInt(nStr, 10);
    if (n0 < 5 || n0 > s.length) throw new TarFormatError('invalid PAX record length');
    const rest = s.slice(sp + 1);
    const n = n0 - (nStr.length + 1);
    if (n <= 0) throw new TarFormatError('invalid PAX record');
    const rec = rest.slice(0, n - 1);
    const nl = rest.slice(n - 1, n);
    s = rest.slice(n);
    if (nl !== '\n') throw new TarFormatError('invalid PAX record (no newline)');
    const eq = rec.indexOf('=');
    if (eq < 0) throw new TarFormatError('invalid PAX record (no =)');
    const k = rec.slice(0, eq);
    const v = rec.slice(eq + 1);
    if (!validPaxRecord(k, v)) throw new TarFormatError(`invalid PAX record ${JSON.stringify(k)}`);
    if (k === 'GNU.sparse.offset' || k === 'GNU.sparse.numbytes') {
      if ((sparse.length % 2 === 0 && k !== 'GNU.sparse.offset') || (sparse.length % 2 === 1 && k !== 'GNU.sparse.numbytes') || v.includes(',')) {
        throw new TarFormatError('invalid GNU sparse PAX records');
      }
      sparse.push(v);
    } else {
      out.set(k, v);
    }
  }
  if (sparse.length > 0) out.set('GNU.sparse.map', sparse.join(','));
  return out;
}

export const MAX_PAX_SIZE = MAX_SPECIAL_FILE_SIZE;

/** A PAX time `%d[.%d]` (archive/tar parsePAXTime) as seconds and nanoseconds. */
export function parsePaxTime(s: string): { sec: number; nsec: number } {
  const dot = s.indexOf('.');
  const ss = dot >= 0 ? s.slice(0, dot) : s;
  let sn = dot >= 0 ? s.slice(dot + 1) : '';
  if (!/^[+-]?\d+$/.test(ss)) throw new TarFormatError(`invalid PAX time ${JSON.stringify(s)}`);
  const sec = parseInt(ss, 10);
  if (!Number.isSafeInteger(sec)) throw new TarFormatError(`invalid PAX time ${JSON.stringify(s)}`);
  if (sn === '') return { sec, nsec: 0 };
  if (!/^\d*$/.test(sn)) throw new TarFormatError(`invalid PAX time ${JSON.stringify(s)}`);
  sn = sn.length < 9 ? sn.padEnd(9, '0') : sn.slice(0, 9);
  const nsec = parseInt(sn, 10);
  if (ss.startsWith('-')) {
    // time.Unix(secs, -nsecs), normalised so that 0 <= nsec < 1e9.
    return nsec === 0 ? { sec, nsec: 0 } : { sec: sec - 1, nsec: 1e9 - nsec };
  }
  return { sec, nsec };
}

export const PAX_KEYS = { PAX_PATH, PAX_LINKPATH, PAX_UNAME, PAX_GNAME, PAX_UID, PAX_GID, PAX_SIZE, PAX_MTIME, PAX_ATIME, PAX_CTIME } as const;
