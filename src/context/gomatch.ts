/**
 * Go's `path/filepath.Match` (Unix: `/` separator, `\` escapes) and Docker's wildcard test for
 * COPY/ADD sources. Names and patterns are compared rune by rune (Unicode code points).
 */
import { TsbuildError } from '../errors.js';

/** Go's filepath.ErrBadPattern. */
export class BadPatternError extends TsbuildError {
  constructor(pattern: string) {
    super('BAD_PATTERN', `syntax error in pattern: ${pattern}`);
  }
}

const SEP = '/';

/**
 * filepath.Match: true when `name` matches the shell pattern `pattern` as a whole. `*` and `?` never
 * match `/`; `[...]` classes (negated with `^`), `\` escapes. A malformed pattern throws
 * BadPatternError (Go ≥ 1.16 also checks the part of the pattern after a failed match).
 */
export function goMatch(pattern: string, name: string): boolean {
  const r = match(Array.from(pattern), Array.from(name));
  if (r === 'bad') throw new BadPatternError(pattern);
  return r;
}

/** goMatch without throwing: false for a malformed pattern (how Docker's wildcard walk uses it). */
export function goMatchQuiet(pattern: string, name: string): boolean {
  return match(Array.from(pattern), Array.from(name)) === true;
}

/** Throws BadPatternError unless `pattern` is well-formed. */
export function validatePattern(pattern: string): void {
  goMatch(pattern, '.');
}

type R = boolean | 'bad';

function match(pat: string[], name: string[]): R {
  let p = pat;
  let n = name;
  pattern: while (p.length > 0) {
    const { star, chunk, rest } = scanChunk(p);
    p = rest;
    if (star && chunk.length === 0) {
      // Trailing * matches the rest of the name unless it has a /.
      return !n.includes(SEP);
    }
    const first = matchChunk(chunk, n);
    if (first === 'bad') return 'bad';
    if (first !== false && (first.length === 0 || p.length > 0)) {
      n = first;
      continue;
    }
    if (star) {
      // Look for a match skipping i+1 runes; a star cannot skip a /.
      for (let i = 0; i < n.length && n[i] !== SEP; i++) {
        const t = matchChunk(chunk, n.slice(i + 1));
        if (t === 'bad') return 'bad';
        if (t !== false) {
          if (p.length === 0 && t.length > 0) continue;
          n = t;
          continue pattern;
        }
      }
    }
    // No match: the rest of the pattern must still be well-formed.
    while (p.length > 0) {
      const s = scanChunk(p);
      p = s.rest;
      if (matchChunk(s.chunk, []) === 'bad') return 'bad';
    }
    return false;
  }
  return n.length === 0;
}

function scanChunk(pat: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let p = pat;
  let star = false;
  while (p.length > 0 && p[0] === '*') {
    p = p.slice(1);
    star = true;
  }
  let inRange = false;
  let i = 0;
  scan: for (; i < p.length; i++) {
    switch (p[i]) {
      case '\\':
        if (i + 1 < p.length) i++;
        break;
      case '[':
        inRange = true;
        break;
      case ']':
        inRange = false;
        break;
      case '*':
        if (!inRange) break scan;
        break;
    }
  }
  return { star, chunk: p.slice(0, i), rest: p.slice(i) };
}

/** The rest of `s` after matching `chunk`, false on mismatch, 'bad' for a malformed chunk. */
function matchChunk(chunkIn: string[], sIn: string[]): string[] | false | 'bad' {
  let chunk = chunkIn;
  let s = sIn;
  let failed = false;
  while (chunk.length > 0) {
    if (!failed && s.length === 0) failed = true;
    const c = chunk[0] as string;
    if (c === '[') {
      let r = '';
      if (!failed) {
        r = s[0] as string;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
      let negated = false;
      if (chunk.length > 0 && chunk[0] === '^') {
        negated = true;
        chunk = chunk.slice(1);
      }
      let matched = false;
      let nrange = 0;
      for (;;) {
        if (chunk.length > 0 && chunk[0] === ']' && nrange > 0) {
          chunk = chunk.slice(1);
          break;
        }
        const lo = getEsc(chunk);
        if (lo === 'bad') return 'bad';
        chunk = lo.rest;
        let hi = lo;
        if (chunk[0] === '-') {
          const h = getEsc(chunk.slice(1));
          if (h === 'bad') return 'bad';
          chunk = h.rest;
          hi = h;
        }
        if (!failed) {
          const cp = r.codePointAt(0) ?? -1;
          if ((lo.r.codePointAt(0) ?? 0) <= cp && cp <= (hi.r.codePointAt(0) ?? 0)) matched = true;
        }
        nrange++;
      }
      if (matched === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[0] === SEP) failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    } else {
      if (c === '\\') {
        chunk = chunk.slice(1);
        if (chunk.length === 0) return 'bad';
      }
      if (!failed) {
        if (chunk[0] !== s[0]) failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    }
  }
  return failed ? false : s;
}

function getEsc(chunkIn: string[]): { r: string; rest: string[] } | 'bad' {
  let chunk = chunkIn;
  if (chunk.length === 0 || chunk[0] === '-' || chunk[0] === ']') return 'bad';
  if (chunk[0] === '\\') {
    chunk = chunk.slice(1);
    if (chunk.length === 0) return 'bad';
  }
  const r = chunk[0] as string;
  const rest = chunk.slice(1);
  if (rest.length === 0) return 'bad';
  return { r, rest };
}

/** Docker's containsWildcards (Unix): a `*`, `?` or `[` not escaped by a backslash. */
export function containsWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const ch = name[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}
