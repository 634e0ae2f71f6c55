/** Test helper: build tars in memory with the real header encoder (and raw blocks for odd cases). */
import { blockPadding, encodeHeader, type TarHeader } from '../../src/layer/tar-header.js';

export interface MemEntry {
  h: Partial<TarHeader> & { name: string };
  data?: Buffer | string;
}

export function header(p: MemEntry['h']): TarHeader {
  const typeflag = p.typeflag ?? '0';
  return {
    typeflag,
    name: p.name,
    linkname: p.linkname ?? '',
    mode: p.mode ?? (typeflag === '5' ? 0o40755 : 0o100644),
    uid: p.uid ?? 0,
    gid: p.gid ?? 0,
    size: p.size ?? 0,
    mtime: p.mtime ?? 1700000000,
    uname: p.uname ?? 'root',
    gname: p.gname ?? 'root',
    devmajor: p.devmajor ?? 0,
    devminor: p.devminor ?? 0,
    xattrs: p.xattrs,
  };
}

/** A tar of `entries` (names are byte strings), ending with the two zero blocks unless `end: false`. */
export function tarOf(entries: MemEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    parts.push(encodeHeader(header({ size: data.length, ...e.h })));
    if (data.length > 0) parts.push(data, Buffer.alloc(blockPadding(data.length)));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A raw header block with arbitrary fields (strings, latin1) and a correct checksum. */
export function rawBlock(fields: Record<number, string>, magic: 'ustar' | 'gnu' | 'v7' = 'ustar'): Buffer {
  const b = Buffer.alloc(512);
  for (const [off, s] of Object.entries(fields)) b.write(s, Number(off), 'latin1');
  if (magic === 'ustar') b.write('ustar\x0000', 257, 'latin1');
  if (magic === 'gnu') b.write('ustar  \0', 257, 'latin1');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (b[i] as number);
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

export function octal(n: number, len: number): string {
  return `${n.toString(8).padStart(len - 1, '0')}\0`;
}
