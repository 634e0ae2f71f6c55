/**
 * A layer's entries, read from its tar-split (the exact tar dockerd would export:
 * the same entries dive reads from `docker save`), or, when a layer has no
 * tar-split, from its overlay2 `diff` dir (0/0 char devices are whiteouts, the
 * `trusted.overlay.opaque=y` xattr an opaque dir).
 */
import { execFile } from 'node:child_process';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bstrToBytes } from '../layer/bytes.js';
import { crc64 } from '../layer/crc64.js';
import { BLOCK_SIZE, blockPadding, decodeHeaderBlock, isZeroBlock, parsePaxRecords, TYPE_GNU_LONGLINK, TYPE_GNU_LONGNAME, TYPE_XGLOBAL, TYPE_XHEADER } from '../layer/tar-header.js';
import { FILE_TYPE, readTarSplit } from '../layer/tar-split.js';
import { opaqueXattr } from '../snapshot/overlay-xattrs.js';

export type EntryKind = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'whiteout' | 'opaque';

/** One tar entry of a layer. */
export interface LayerEntry {
  /** Absolute, cleaned path (`/etc/passwd`); for a whiteout the path it deletes, for an opaque marker its dir. */
  path: string;
  kind: EntryKind;
  /** The tar header's size: content bytes of a regular file, 0 otherwise (as dive counts). */
  size: number;
  mode: number;
  uid: number;
  gid: number;
  linkname: string;
  /** CRC-64/ISO of the contents (hex), for regular files with data; null otherwise. */
  crc: string | null;
}

const WH = '.wh.';
const OPQ = '.wh..wh..opq';

/** A tar name as a clean absolute path, or null for the root itself. */
export function cleanPath(name: string): string | null {
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return parts.length === 0 ? null : '/' + parts.join('/');
}

function display(b: string): string {
  return bstrToBytes(b).toString('utf8');
}

function kindOf(typeflag: string): EntryKind {
  switch (typeflag) {
    case '5':
      return 'dir';
    case '2':
      return 'symlink';
    case '1':
      return 'hardlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '6':
      return 'fifo';
    default:
      return 'file';
  }
}

/** Classifies a name as a whiteout / opaque marker the way dockerd applies a layer. */
export function markWhiteout(e: LayerEntry): LayerEntry {
  const slash = e.path.lastIndexOf('/');
  const dir = e.path.slice(0, slash);
  const base = e.path.slice(slash + 1);
  if (base === OPQ) return { ...e, kind: 'opaque', path: dir === '' ? '/' : dir, size: 0, crc: null };
  if (base.startsWith(WH)) return { ...e, kind: 'whiteout', path: `${dir}/${base.slice(WH.length)}`, size: 0, crc: null };
  return e;
}

/**
 * The entries of a tar-split: names and sizes from its file entries, type, mode,
 * owner and link name from the header blocks in the segment before each one.
 */
export function entriesFromTarSplit(gz: Buffer): LayerEntry[] {
  const out: LayerEntry[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let prevSize = 0;
  for (const e of readTarSplit(gz)) {
    if (e.type !== FILE_TYPE) {
      pending = pending.length === 0 ? e.payload : Buffer.concat([pending, e.payload]);
      continue;
    }
    // pending = padding of the previous entry's data, then this entry's header blocks.
    let off = blockPadding(prevSize);
    let linkname: string | undefined;
    let header = null as ReturnType<typeof decodeHeaderBlock> | null;
    const pax = new Map<string, string>();
    while (off + BLOCK_SIZE <= pending.length) {
      const blk = pending.subarray(off, off + BLOCK_SIZE);
      off += BLOCK_SIZE;
      if (isZeroBlock(blk)) continue;
      const h = decodeHeaderBlock(Buffer.from(blk));
      if (h.typeflag === TYPE_XHEADER || h.typeflag === TYPE_XGLOBAL || h.typeflag === TYPE_GNU_LONGNAME || h.typeflag === TYPE_GNU_LONGLINK) {
        const data = pending.subarray(off, off + h.size);
        off += h.size + blockPadding(h.size);
        if (h.typeflag === TYPE_XHEADER) for (const [k, v] of parsePaxRecords(Buffer.from(data))) pax.set(k, v);
        if (h.typeflag === TYPE_GNU_LONGLINK) linkname = data.toString('latin1').replace(/\0.*$/s, '');
        continue;
      }
      header = h;
    }
    pending = Buffer.alloc(0);
    prevSize = e.size;
    const path = cleanPath(display(e.name));
    if (path === null) continue;
    const num = (k: string, d: number) => (pax.has(k) ? Number(pax.get(k)) : d);
    const entry: LayerEntry = {
      path,
      kind: header ? kindOf(header.typeflag) : e.name.endsWith('/') ? 'dir' : 'file',
      size: e.size,
      mode: (header?.mode ?? 0) & 0o7777,
      uid: num('uid', header?.uid ?? 0),
      gid: num('gid', header?.gid ?? 0),
      linkname: display(pax.get('linkpath') ?? linkname ?? header?.linkname ?? ''),
      crc: e.payload && e.size > 0 ? e.payload.toString('hex') : null,
    };
    out.push(markWhiteout(entry));
  }
  return out;
}

const pexecLazy = () => promisify(execFile);
let pexecFn: ReturnType<typeof pexecLazy> | undefined;
/** promisify(execFile), made at first use: node:child_process then loads, not at every start. */
const pexec = ((...args: unknown[]) => (pexecFn ??= pexecLazy())(...(args as [string]))) as ReturnType<typeof pexecLazy>;

async function isOpaque(dir: string): Promise<boolean> {
  try {
    const { stdout } = await pexec('getfattr', ['--only-values', '-h', '-n', opaqueXattr(), dir], { encoding: 'latin1' });
    return stdout === 'y';
  } catch {
    return false;
  }
}

/**
 * The entries of an overlay2 `diff` dir in the layer tar's order (pre-order,
 * names sorted bytewise): 0/0 char devices become whiteouts, opaque dirs are
 * followed by their marker, a second path of a hardlinked inode is a hardlink.
 */
export async function entriesFromDiffDir(diffDir: string): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  const inodes = new Map<string, string>();
  const walk = async (abs: string, rel: string): Promise<void> => {
    const names = (await readdir(abs, { encoding: 'buffer' })).sort(Buffer.compare);
    for (const nameBuf of names) {
      const name = nameBuf.toString('utf8');
      const p = `${rel}/${name}`;
      const a = join(abs, name);
      const st = await lstat(a);
      const base = { path: p, size: 0, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, linkname: '', crc: null };
      if (st.isDirectory()) {
        out.push({ ...base, kind: 'dir' });
        if (await isOpaque(a)) out.push({ ...base, kind: 'opaque', mode: st.mode & 0o777 });
        await walk(a, p);
      } else if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ ...base, kind: 'whiteout', mode: 0o600 });
      } else if (st.isSymbolicLink()) {
        out.push({ ...base, kind: 'symlink', linkname: await readlink(a) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? inodes.get(key) : undefined;
        if (first !== undefined) {
          out.push({ ...base, kind: 'hardlink', linkname: first.slice(1) });
        } else {
          if (st.nlink > 1) inodes.set(key, p);
          const data = st.size > 0 ? await readFile(a) : null;
          out.push({ ...base, kind: 'file', size: st.size, crc: data ? crc64(data).toString('hex') : null });
        }
      } else {
        out.push({ ...base, kind: st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'fifo' });
      }
    }
  };
  await walk(diffDir, '');
  return out;
}
