/**
 * Byte strings: tar names, link targets and file names are arbitrary bytes (not necessarily UTF-8).
 * Inside src/layer they are carried as "byte strings": JS strings whose every char code is one byte
 * (0..255), i.e. Buffer `latin1` decoding. Comparing two byte strings with `<` compares bytes, and
 * `.length` is the byte length, which is what tar field sizes and Go's sort order need.
 */
import { isUtf8 } from 'node:buffer';

/** A string whose char codes are bytes (0..255); see the module comment. */
export type ByteString = string;

export function bytesToBStr(b: Uint8Array): ByteString {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

export function bstrToBytes(s: ByteString): Buffer {
  return Buffer.from(s, 'latin1');
}

/** The UTF-8 bytes of an ordinary JS string, as a byte string. */
export function utf8ToBStr(s: string): ByteString {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** Whether a byte string is valid UTF-8 (Go's utf8.ValidString: no surrogates, no overlongs). */
export function bstrIsUtf8(s: ByteString): boolean {
  return isUtf8(bstrToBytes(s));
}

/** For messages: decode as UTF-8, invalid bytes become U+FFFD. */
export function bstrDisplay(s: ByteString): string {
  return bstrToBytes(s).toString('utf8');
}

/** Go's strings with only 7-bit, non-NUL chars (archive/tar isASCII). */
export function isAsciiBStr(s: ByteString): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 || c === 0) return false;
  }
  return true;
}

/** archive/tar toASCII: drop every byte >= 0x80 and NULs. */
export function toAsciiBStr(s: ByteString): ByteString {
  if (isAsciiBStr(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80 && c !== 0) out += s[i];
  }
  return out;
}

/** Already what goClean returns: no empty, `.` or `..` component, no trailing slash (walks make such paths). */
function isClean(p: string): boolean {
  const n = p.length;
  if (n === 0) return false;
  if (p === '.' || p === '/') return true;
  if (p.charCodeAt(n - 1) === 0x2f) return false;
  let start = p.charCodeAt(0) === 0x2f ? 1 : 0;
  for (let i = start; i <= n; i++) {
    if (i < n && p.charCodeAt(i) !== 0x2f) continue;
    const len = i - start;
    if (len === 0) return false;
    if (p.charCodeAt(start) === 0x2e && (len === 1 || (len === 2 && p.charCodeAt(start + 1) === 0x2e))) return false;
    start = i + 1;
  }
  return true;
}

/** Go path.Clean (lexical; also filepath.Clean on Linux). */
export function goClean(p: string): string {
  if (isClean(p)) return p;
  if (p === '') return '.';
  const rooted = p[0] === '/';
  const n = p.length;
  let out = '';
  let r = 0;
  let dotdot = 0;
  if (rooted) {
    out = '/';
    r = 1;
    dotdot = 1;
  }
  while (r < n) {
    if (p[r] === '/') {
      r++;
    } else if (p[r] === '.' && (r + 1 === n || p[r + 1] === '/')) {
      r++;
    } else if (p[r] === '.' && p[r + 1] === '.' && (r + 2 === n || p[r + 2] === '/')) {
      r += 2;
      if (out.length > dotdot) {
        let w = out.length - 1;
        while (w > dotdot && out[w] !== '/') w--;
        out = out.slice(0, w);
      } else if (!rooted) {
        out += out.length > 0 ? '/..' : '..';
        dotdot = out.length;
      }
    } else {
      if ((rooted && out.length !== 1) || (!rooted && out.length !== 0)) out += '/';
      const start = r;
      while (r < n && p[r] !== '/') r++;
      out += p.slice(start, r);
    }
  }
  return out === '' ? '.' : out;
}

/** Go path.Split: everything up to and including the last '/', and the rest. */
export function goSplit(p: string): [dir: string, file: string] {
  const i = p.lastIndexOf('/');
  return [p.slice(0, i + 1), p.slice(i + 1)];
}

/** Go path.Join. */
export function goJoin(...elems: string[]): string {
  const parts: string[] = [];
  let started = false;
  for (const e of elems) {
    if (started || e !== '') {
      parts.push(e);
      started = true;
    }
  }
  if (!started) return '';
  return goClean(parts.join('/'));
}

/** Go path.Dir. */
export function goDir(p: string): string {
  const [dir] = goSplit(p);
  return goClean(dir);
}

/** Go path.Base. */
export function goBase(p: string): string {
  if (p === '') return '.';
  let s = p;
  while (s.length > 0 && s.endsWith('/')) s = s.slice(0, -1);
  const i = s.lastIndexOf('/');
  if (i >= 0) s = s.slice(i + 1);
  return s === '' ? '/' : s;
}
