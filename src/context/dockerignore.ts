/**
 * `.dockerignore`: reading the file (moby/patternmatcher ignorefile.ReadAll, identical to the
 * docker 20.10 CLI's reader) and matching paths against its patterns the way the 20.10 CLI and
 * daemon do (pkg/fileutils PatternMatcher, the ancestor of moby/patternmatcher).
 *
 * Pattern syntax: `*` (any run of non-`/`), `?` (one non-`/` rune), `[...]` (a regexp character
 * class, passed through as Docker does: `[!a]` is NOT a negation, `[^a]` is), `**` (any number of
 * path segments, `**` at the end matches everything), `\x` escapes, `!` exceptions. A pattern
 * matches a path or, through its first len(pattern segments) parent segments, a parent directory.
 * The last matching pattern wins.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { goClean } from '../layer/bytes.js';
import { TsbuildError } from '../errors.js';
import { validatePattern } from './gomatch.js';

export const DOCKERIGNORE = '.dockerignore';

export class DockerignoreError extends TsbuildError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DOCKERIGNORE', message, options);
  }
}

/**
 * Patterns from `.dockerignore` text: a UTF-8 BOM is dropped, lines starting with `#` are comments
 * (only at column 1), surrounding whitespace is trimmed, blank lines skipped; the pattern (after an
 * optional `!`, itself trimmed) is cleaned like Go's filepath.Clean and a leading `/` dropped.
 */
export function parseDockerignore(text: string | Buffer): string[] {
  let s = typeof text === 'string' ? text : text.toString('utf8');
  if (s.startsWith('\uFEFF')) s = s.slice(1);
  const out: string[] = [];
  // bufio.Scanner's ScanLines: split on \n, drop one trailing \r.
  const lines = s.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (let raw of lines) {
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    if (raw.startsWith('#')) continue;
    let pattern = goTrimSpace(raw);
    if (pattern === '') continue;
    const invert = pattern[0] === '!';
    if (invert) pattern = goTrimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = goClean(pattern);
      if (pattern.length > 1 && pattern[0] === '/') pattern = pattern.slice(1);
    }
    out.push(invert ? `!${pattern}` : pattern);
  }
  return out;
}

/** strings.TrimSpace (ASCII and Unicode white space). */
function goTrimSpace(s: string): string {
  return s.replace(/^[\s\u0085]+|[\s\u0085]+$/gu, '');
}

export interface IgnoreFile {
  /** The file that was read. */
  path: string;
  patterns: string[];
}

/**
 * The ignore file for a build: `<Dockerfile path>.dockerignore` next to the Dockerfile when it
 * exists (BuildKit's rule; the 20.10 CLI only knows the second), else `<context>/.dockerignore`;
 * undefined when neither exists.
 */
export async function readDockerignore(opts: { contextDir: string; dockerfile?: string }): Promise<IgnoreFile | undefined> {
  const candidates: string[] = [];
  if (opts.dockerfile !== undefined) candidates.push(join(dirname(opts.dockerfile), `${basename(opts.dockerfile)}.dockerignore`));
  candidates.push(join(opts.contextDir, DOCKERIGNORE));
  for (const path of candidates) {
    let text: Buffer;
    try {
      text = await readFile(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new DockerignoreError(`error reading ${path}: ${(e as Error).message}`, { cause: e });
    }
    return { path, patterns: parseDockerignore(text) };
  }
  return undefined;
}

/** One compiled pattern. */
export interface IgnorePattern {
  /** The cleaned pattern without its `!`. */
  readonly text: string;
  readonly exclusion: boolean;
  /** text split on `/` (how many leading parent segments the parent rule looks at). */
  readonly dirs: readonly string[];
  readonly regexp: RegExp;
}

/** Characters escaped when a pattern becomes a regexp (moby/patternmatcher's set). */
const ESCAPED = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

function escapeRune(ch: string): string {
  return `\\u{${(ch.codePointAt(0) ?? 0).toString(16)}}`;
}

/** The regexp a pattern compiles to (fileutils Pattern.compile), as JS `u`-mode source. */
export function patternRegexpSource(pattern: string): string {
  const runes = Array.from(pattern);
  let re = '^';
  let inClass = false;
  for (let i = 0; i < runes.length; i++) {
    const ch = runes[i] as string;
    if (ch === '*') {
      if (runes[i + 1] === '*') {
        i++;
        if (runes[i + 1] === '/') i++;
        re += i + 1 >= runes.length ? '.*' : '(?:.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ESCAPED.has(ch)) {
      re += escapeRune(ch);
    } else if (ch === '\\') {
      const next = runes[i + 1];
      if (next === undefined) {
        re += '\\\\';
      } else {
        i++;
        // Go accepts any escaped punctuation; JS u-mode only some, so spell punctuation out.
        re += /[A-Za-z0-9]/.test(next) ? `\\${next}` : escapeRune(next);
      }
    } else if (ch === '[') {
      // A character class, passed through to the regexp as Docker does.
      re += inClass ? escapeRune(ch) : ch;
      inClass = true;
    } else if (ch === ']') {
      re += inClass ? ch : escapeRune(ch);
      inClass = false;
    } else if (ch === '/' || ch === '-' || ch === '^' || /[A-Za-z0-9_]/.test(ch)) {
      re += ch;
    } else {
      // Everything else is a literal in Go's regexp syntax.
      re += escapeRune(ch);
    }
  }
  return `${re}$`;
}

export function compilePattern(raw: string): IgnorePattern {
  let p = goClean(raw.trim());
  let exclusion = false;
  if (p[0] === '!') {
    if (p.length === 1) throw new DockerignoreError('illegal exclusion pattern: "!"');
    exclusion = true;
    p = p.slice(1);
  }
  try {
    validatePattern(p);
  } catch (e) {
    throw new DockerignoreError(`syntax error in pattern: ${p}`, { cause: e });
  }
  let regexp: RegExp;
  try {
    regexp = new RegExp(patternRegexpSource(p), 'u');
  } catch (e) {
    throw new DockerignoreError(`syntax error in pattern: ${p}`, { cause: e });
  }
  return { text: p, exclusion, dirs: p.split('/'), regexp };
}

/** fileutils.PatternMatcher (docker 20.10). */
export class PatternMatcher {
  readonly patterns: readonly IgnorePattern[];
  /** True when some pattern is an `!` exception. */
  readonly hasExclusions: boolean;

  constructor(patterns: readonly string[]) {
    const list: IgnorePattern[] = [];
    for (const raw of patterns) {
      if (raw.trim() === '') continue;
      list.push(compilePattern(raw));
    }
    this.patterns = list;
    this.hasExclusions = list.some((p) => p.exclusion);
  }

  /**
   * PatternMatcher.Matches: whether `file` (a clean relative path) is excluded. Each pattern is
   * tried on the path, then on its parent path cut to as many segments as the pattern has; the
   * last pattern that matches decides.
   */
  matches(file: string): boolean {
    let matched = false;
    const parentPath = goDirOf(file);
    const parentDirs = parentPath.split('/');
    for (const p of this.patterns) {
      let m = p.regexp.test(file);
      if (!m && parentPath !== '.' && p.dirs.length <= parentDirs.length) {
        m = p.regexp.test(parentDirs.slice(0, p.dirs.length).join('/'));
      }
      if (m) matched = !p.exclusion;
    }
    return matched;
  }

  /**
   * Whether the walk must still look inside the excluded directory `dir`: some exception's text
   * starts with `dir/` (the 20.10 CLI's rule, TarWithOptions).
   */
  mayReincludeUnder(dir: string): boolean {
    if (!this.hasExclusions) return false;
    const prefix = `${dir}/`;
    return this.patterns.some((p) => p.exclusion && `${p.text}/`.startsWith(prefix));
  }
}

function goDirOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '.' : goClean(p.slice(0, i + 1));
}

/** fileutils.Matches: is `file` excluded by `patterns` (the context root never is). */
export function isExcluded(file: string, patterns: readonly string[] | PatternMatcher): boolean {
  const pm = patterns instanceof PatternMatcher ? patterns : new PatternMatcher(patterns);
  const f = goClean(file);
  if (f === '.') return false;
  return pm.matches(f);
}

/**
 * The 20.10 CLI's TrimBuildFilesFromExcludes: the Dockerfile (when inside the context, given
 * relative to it) and `.dockerignore` are always sent, so exceptions for them are appended.
 */
export function trimBuildFilesFromExcludes(patterns: readonly string[], dockerfileRel: string | undefined): string[] {
  const out = [...patterns];
  if (isExcluded(DOCKERIGNORE, patterns)) out.push(`!${DOCKERIGNORE}`);
  if (dockerfileRel !== undefined && isExcluded(dockerfileRel, patterns)) out.push(`!${dockerfileRel}`);
  return out;
}
