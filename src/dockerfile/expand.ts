/**
 * Dockerfile variable expansion and word splitting, following the rules of
 * BuildKit's shell lexer (frontend/dockerfile/shell/lex.go) so that a
 * Dockerfile expands here exactly as it does under `docker build`.
 *
 * It is deliberately not a POSIX shell: no command substitution, no field
 * splitting of quoted text, globs in `${v#…}` know only `*` and `?`, and
 * several oddities of BuildKit are kept on purpose (each is noted where it
 * happens).
 */
import { TsbuildError } from '../errors.js';

export type EscapeToken = '\\' | '`';

/** Where variable values come from. `undefined` means unset; `''` means set but empty. */
export interface VariableLookup {
  get(name: string): string | undefined;
}

/** A malformed word or a failed `${v?msg}` check; `offset` is the 0-based index in the input. */
export class ExpansionError extends TsbuildError {
  readonly offset: number;
  /** The message without BuildKit's `failed to process "…": ` prefix. */
  readonly reason: string;
  constructor(source: string, reason: string, offset: number) {
    super('EXPANSION', `failed to process ${goQuote(source)}: ${reason}`);
    this.offset = offset;
    this.reason = reason;
  }
}

export interface ExpandResult {
  value: string;
  /** Every variable name looked up, set or not (for "unused build-arg" checks). */
  used: Set<string>;
}

/** BuildKit's ProcessWord: expand one word; quotes removed, escapes processed, no splitting. */
export function expandWord(text: string, vars: VariableLookup, escape: EscapeToken = '\\'): ExpandResult {
  const lexer = new Lexer(text, vars, escape);
  const { value } = lexer.run();
  return { value, used: lexer.used };
}

/**
 * BuildKit's ProcessWords: expand, then split on unquoted whitespace (including
 * whitespace that came out of an unquoted expansion). Empty words, whether from
 * an empty expansion or from `""`, are dropped.
 */
export function expandWords(text: string, vars: VariableLookup, escape: EscapeToken = '\\'): { words: string[]; used: Set<string> } {
  const lexer = new Lexer(text, vars, escape);
  const { words } = lexer.run();
  return { words, used: lexer.used };
}

/** Split like expandWords but leave `$` alone: for instructions that don't expand variables. */
export function splitWords(text: string, escape: EscapeToken = '\\'): string[] {
  return new Lexer(text, undefined, escape).run().words;
}

/** A VariableLookup over a Map or a plain record (own keys only, so `constructor` is not "set"). */
export function lookupFrom(map: ReadonlyMap<string, string> | Record<string, string>): VariableLookup {
  if (map instanceof Map) return { get: (name) => map.get(name) };
  const record = map as Record<string, string>;
  return { get: (name) => (Object.hasOwn(record, name) ? record[name] : undefined) };
}

/** Raised inside the lexer; turned into an ExpansionError (which needs the whole source) at the top. */
class LexFailure extends Error {
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(reason);
  }
}

/** A glob that cannot be turned into a regular expression (bad escape). */
class PatternFailure extends Error {}

interface Piece {
  value: string;
  words: string[];
}

/** Collects words for ProcessWords; mirrors lex.go's wordsStruct. */
class WordCollector {
  private readonly words: string[] = [];
  private buf = '';
  private inWord = false;

  /** Unquoted text: whitespace ends the current word. */
  addText(text: string): void {
    for (const ch of text) {
      if (!isSpace(ch)) this.addRaw(ch);
      else if (this.inWord && this.buf !== '') this.endWord();
    }
  }

  /** Quoted or escaped text: kept as is, whitespace included. */
  addRaw(text: string): void {
    this.buf += text;
    this.inWord = true;
  }

  /** BuildKit only emits non-empty words, so `""` alone yields nothing. */
  finish(): string[] {
    if (this.buf !== '') this.endWord();
    return this.words;
  }

  private endWord(): void {
    this.words.push(this.buf);
    this.buf = '';
    this.inWord = false;
  }
}

class Lexer {
  readonly used = new Set<string>();
  private pos = 0;

  /** `vars` undefined means "don't expand": `$` is then an ordinary character. */
  constructor(
    private readonly src: string,
    private readonly vars: VariableLookup | undefined,
    private readonly escape: EscapeToken,
  ) {
    // Go's text/scanner silently skips a byte order mark at the very start.
    if (src.startsWith('\uFEFF')) this.pos = 1;
  }

  run(): Piece {
    try {
      return this.readUntil(undefined, false);
    } catch (err) {
      if (err instanceof LexFailure) throw new ExpansionError(this.src, err.reason, err.offset);
      throw err;
    }
  }

  private peek(): string | undefined {
    const cp = this.src.codePointAt(this.pos);
    return cp === undefined ? undefined : String.fromCodePoint(cp);
  }

  private next(): string | undefined {
    const ch = this.peek();
    if (ch !== undefined) this.pos += ch.length;
    return ch;
  }

  private atEnd(): boolean {
    return this.pos >= this.src.length;
  }

  /**
   * lex.go's processStopOn: read up to `stop` (consumed) or the end of input.
   * `rawEscapes` keeps escape characters in the output; BuildKit uses it for
   * glob patterns and `/` replacements so `\*` still means a literal star.
   */
  private readUntil(stop: string | undefined, rawEscapes: boolean): Piece {
    let value = '';
    // Each level gets its own collector. BuildKit ≥0.15 shares one buffer
    // across nested `${…}` words, which drops a partly built word
    // (ProcessWords("pre${X:-post}") gives ["post"]); that bug is not copied.
    const words = new WordCollector();
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (ch === stop) {
        this.pos += ch.length;
        return { value, words: words.finish() };
      }
      if (ch === '$' && this.vars !== undefined) {
        const expanded = this.readDollar();
        value += expanded;
        words.addText(expanded); // unquoted expansions are split on whitespace
        continue;
      }
      const quoted = this.readSpecial(ch, rawEscapes);
      if (quoted !== undefined) {
        value += quoted;
        words.addRaw(quoted);
        continue;
      }
      this.pos += ch.length;
      if (ch !== this.escape) {
        value += ch;
        words.addText(ch);
        continue;
      }
      if (rawEscapes) {
        value += ch;
        words.addRaw(ch);
      }
      const escaped = this.next();
      if (escaped === undefined) break; // a trailing escape is dropped
      value += escaped;
      words.addRaw(escaped);
    }
    if (stop !== undefined) {
      // Callers replace this with a message naming the construct left open.
      throw new LexFailure(`unexpected end of statement while looking for matching ${stop}`, this.pos);
    }
    return { value, words: words.finish() };
  }

  /** Quotes and `<<`: text added to a word without splitting. Undefined if `ch` is ordinary. */
  private readSpecial(ch: string, rawEscapes: boolean): string | undefined {
    switch (ch) {
      case "'":
        return this.readSingleQuoted();
      case '"':
        return this.readDoubleQuoted(rawEscapes);
      case '<':
        return this.readHeredocMarker();
      default:
        return undefined;
    }
  }

  /** Everything up to the next `'` is literal; there is no way to escape `'`. */
  private readSingleQuoted(): string {
    const open = this.pos;
    this.pos += 1;
    const close = this.src.indexOf("'", this.pos);
    if (close < 0) {
      this.pos = this.src.length; // consumed to the end, like BuildKit's scanner
      throw new LexFailure('unexpected end of statement while looking for matching single-quote', open);
    }
    this.pos = close + 1;
    return this.src.slice(open + 1, close);
  }

  /** `$` expands; the escape token only escapes `"`, `$` and itself, otherwise it stays. */
  private readDoubleQuoted(rawEscapes: boolean): string {
    const open = this.pos;
    this.pos += 1;
    let out = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) {
        throw new LexFailure('unexpected end of statement while looking for matching double-quote', open);
      }
      if (ch === '"') {
        this.pos += 1;
        return out;
      }
      if (ch === '$' && this.vars !== undefined) {
        out += this.readDollar();
        continue;
      }
      this.pos += ch.length;
      if (ch !== this.escape) {
        out += ch;
        continue;
      }
      if (rawEscapes) out += ch;
      const after = this.peek();
      if (after === undefined) continue; // the loop then reports the missing quote
      if (after === '"' || after === '$' || after === this.escape) {
        this.pos += after.length;
        out += after;
      } else {
        // BuildKit quirk: with rawEscapes a lone `\` comes out doubled (`"\x"` → `\\x`).
        out += ch;
      }
    }
  }

  /**
   * BuildKit scans `<<` (plus following blanks) as one unit so heredoc
   * markers like `<< EOF` survive word splitting as a single word.
   */
  private readHeredocMarker(): string {
    this.pos += 1;
    if (this.peek() !== '<') return '<';
    this.pos += 1;
    let out = '<<';
    for (let ch = this.peek(); ch === ' ' || ch === '\t' || ch === '\r'; ch = this.peek()) {
      out += ch;
      this.pos += 1;
    }
    return out;
  }

  /** `$name`, `${name}` and `${name<modifier>…}`, positioned on the `$`. */
  private readDollar(): string {
    const start = this.pos;
    this.pos += 1;
    if (this.peek() !== '{') {
      const name = this.readName();
      return name === '' ? '$' : (this.lookup(name) ?? '');
    }
    this.pos += 1;
    const first = this.peek();
    if (first === undefined) throw missingBrace(start);
    if (first === '{' || first === '}' || first === ':') {
      throw new LexFailure('syntax error: bad substitution', this.pos);
    }
    const name = this.readName();
    const opOffset = this.pos;
    const op = this.next();
    switch (op) {
      case undefined:
        // BuildKit reports "unsupported modifier (\uFFFD)" here, an artifact of Go's EOF rune.
        throw missingBrace(start);
      case '}':
        return this.lookup(name) ?? '';
      case '/':
        return this.readReplacement(name, start);
      case ':': {
        const colonOp = this.next();
        if (colonOp === undefined) throw missingBrace(start);
        return this.readModifier(name, colonOp, true, start, opOffset);
      }
      case '-':
      case '+':
      case '?':
      case '#':
      case '%':
        return this.readModifier(name, op, false, start, opOffset);
      default:
        throw unsupportedModifier(op, opOffset);
    }
  }

  /**
   * `${name[:]op word}` for `-`, `+`, `?`, `#`, `%` (`##`/`%%` arrive as a word
   * starting with the operator again). After a colon any character reaches
   * here, like lex.go's fallthrough: the word is read before it is rejected.
   */
  private readModifier(name: string, op: string, colon: boolean, start: number, opOffset: number): string {
    const modifier = colon ? `:${op}` : op;
    const isTrim = op === '#' || op === '%';
    if (colon && isTrim) throw unsupportedModifier(modifier, opOffset);
    const word = this.readNested('}', isTrim, start, missingBrace);
    const value = this.lookup(name);
    const absent = value === undefined || (colon && value === '');
    switch (op) {
      case '-':
        return absent ? word : (value ?? '');
      case '+':
        return absent ? '' : word;
      case '?':
        return this.requireValue(name, value, colon, word, start);
      case '#':
      case '%':
        return this.trim(op, word, value ?? '', start);
      default:
        throw unsupportedModifier(modifier, opOffset);
    }
  }

  /** `${name?msg}` fails when unset; `${name:?msg}` also when empty. */
  private requireValue(name: string, value: string | undefined, colon: boolean, word: string, start: number): string {
    if (value === undefined) {
      throw new LexFailure(`${name}: ${word || 'is not allowed to be unset'}`, start);
    }
    if (colon && value === '') {
      throw new LexFailure(`${name}: ${word || 'is not allowed to be empty'}`, start);
    }
    return value;
  }

  /** `#`/`##` strip the shortest/longest matching prefix, `%`/`%%` the suffix. */
  private trim(op: '#' | '%', word: string, value: string, start: number): string {
    const longest = word.startsWith(op);
    const pattern = longest ? word.slice(1) : word;
    try {
      return op === '#' ? trimPrefix(pattern, value, longest) : trimSuffix(pattern, value, longest);
    } catch (err) {
      // BuildKit names the reversed pattern when a suffix pattern is bad.
      throw invalidPattern(err, op === '%' ? reversePattern(pattern) : pattern, start);
    }
  }

  /** `${name/pattern/replacement}` and `${name//pattern/replacement}`. */
  private readReplacement(name: string, start: number): string {
    const all = this.peek() === '/';
    if (all) this.pos += 1;
    const pattern = this.readNested('/', true, start, (at) => new LexFailure("syntax error: missing '/' in ${}", at));
    const replacement = this.readNested('}', true, start, missingBrace);
    const value = this.lookup(name) ?? '';
    let re: RegExp;
    try {
      re = globToRegExp(pattern, true, false, all);
    } catch (err) {
      throw invalidPattern(err, pattern, start);
    }
    if (all) return goReplaceAll(re, value, replacement);
    // Only the replace-all form goes through Go's template expansion ($0, $$).
    const match = re.exec(value);
    if (match === null) return value;
    return value.slice(0, match.index) + replacement + value.slice(match.index + match[0].length);
  }

  /**
   * Read the word part of `${…}`. Any failure that ran into the end of input
   * (even an unclosed quote inside) is reported as the `${` being unclosed.
   */
  private readNested(stop: string, rawEscapes: boolean, start: number, onEnd: (at: number) => LexFailure): string {
    try {
      return this.readUntil(stop, rawEscapes).value;
    } catch (err) {
      if (err instanceof LexFailure && this.atEnd()) throw onEnd(start);
      throw err;
    }
  }

  /**
   * A variable name: letters, digits and `_`. A leading digit makes it a
   * positional parameter (all digits, so `$10x` is `$10` then `x`); a special
   * parameter (`$@`, `$#`, …) is exactly one character. Neither is ever set by
   * Docker, but they are looked up like any name.
   */
  private readName(): string {
    const first = this.peek();
    if (first === undefined) return '';
    if (isDigit(first)) return this.readWhile(isDigit);
    if (SPECIAL_PARAMS.has(first)) {
      this.pos += first.length;
      return first;
    }
    return this.readWhile((ch) => ch === '_' || isLetter(ch) || isDigit(ch));
  }

  private readWhile(accept: (ch: string) => boolean): string {
    let out = '';
    for (let ch = this.peek(); ch !== undefined && accept(ch); ch = this.peek()) {
      out += ch;
      this.pos += ch.length;
    }
    return out;
  }

  private lookup(name: string): string | undefined {
    this.used.add(name);
    return this.vars?.get(name);
  }
}

// POSIX special parameters; '0' is listed too but digits are handled first.
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

// Go's unicode.IsSpace / IsLetter / IsDigit, which lex.go uses.
const isSpace = (ch: string): boolean => /^\p{White_Space}$/u.test(ch);
const isLetter = (ch: string): boolean => /^\p{L}$/u.test(ch);
const isDigit = (ch: string): boolean => /^\p{Nd}$/u.test(ch);

function missingBrace(at: number): LexFailure {
  return new LexFailure("syntax error: missing '}'", at);
}

function unsupportedModifier(modifier: string, at: number): LexFailure {
  return new LexFailure(`unsupported modifier (${modifier}) in substitution`, at);
}

function invalidPattern(err: unknown, pattern: string, at: number): unknown {
  if (!(err instanceof PatternFailure)) return err;
  return new LexFailure(`invalid pattern (${pattern}) in substitution: ${err.message}`, at);
}

// Go's `.` matches anything but a newline; JS's `.` also refuses \r, U+2028, U+2029.
const ANY_CHAR = '[^\\n]';

/**
 * lex.go's convertShellPatternToRegex. `*` and `?` are wildcards, `\` escapes
 * only `*`, `?` and `\` (and is dropped before `}` or `/`, which it protected
 * from ending the `${}`). Everything else, `[` included, is literal: BuildKit
 * has no bracket expressions. The backslash is fixed here even when the
 * Dockerfile's escape token is a backtick, as in BuildKit.
 */
function globToRegExp(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const chars = Array.from(pattern);
  let source = anchored ? '^' : '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch === '*') {
      source += greedy ? `${ANY_CHAR}*` : `${ANY_CHAR}*?`;
    } else if (ch === '?') {
      source += ANY_CHAR;
    } else if (ch !== '\\') {
      source += escapeRegExp(ch);
    } else {
      const after = chars[i + 1];
      if (after === '}' || after === '/') continue;
      if (after !== '*' && after !== '?' && after !== '\\') {
        // Go prints its EOF rune as U+FFFD for a trailing backslash.
        throw new PatternFailure(`invalid escape '\\${after ?? '\uFFFD'}'`);
      }
      source += `\\${after}`;
      i += 1;
    }
  }
  return new RegExp(source, global ? 'gu' : 'u');
}

function escapeRegExp(ch: string): string {
  return /^[\\^$.*+?()[\]{}|/]$/.test(ch) ? `\\${ch}` : ch;
}

function trimPrefix(pattern: string, value: string, longest: boolean): string {
  const match = globToRegExp(pattern, longest, true).exec(value);
  return match === null ? value : value.slice(match[0].length);
}

/**
 * A regular expression can't find the shortest match ending at the end, so
 * (like BuildKit) reverse both the pattern and the value and trim a prefix.
 */
function trimSuffix(pattern: string, value: string, longest: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), longest));
}

function reverse(text: string): string {
  return Array.from(text).reverse().join('');
}

/** Reverse a glob but keep each `\x` escape pair in order. */
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const units: string[] = [];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    const after = chars[i + 1];
    if (ch === '\\' && after !== undefined) {
      units.push(ch + after);
      i += 1;
    } else {
      units.push(ch);
    }
  }
  return units.reverse().join('');
}

/**
 * Go's Regexp.ReplaceAllString, which BuildKit uses for `${v//p/r}`: an empty
 * match right after a previous match is not replaced (JS's replace would), and
 * the replacement is a Go template.
 */
function goReplaceAll(re: RegExp, src: string, template: string): string {
  let out = '';
  let lastEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    re.lastIndex = searchPos;
    const match = re.exec(src);
    if (match === null) break;
    const end = match.index + match[0].length;
    out += src.slice(lastEnd, match.index);
    if (end > lastEnd || match.index === 0) out += expandGoTemplate(template, match[0]);
    lastEnd = end;
    // Always advance at least one character.
    const width = searchPos < src.length ? String.fromCodePoint(src.codePointAt(searchPos) ?? 0).length : 0;
    if (searchPos + width > end) searchPos += width;
    else if (searchPos + 1 > end) searchPos += 1;
    else searchPos = end;
  }
  return out + src.slice(lastEnd);
}

/**
 * Go's Regexp.Expand for a pattern without groups: `$$` is `$`, `$0`/`${0}`
 * the whole match, any other `$name`/`${name}` nothing, and a malformed
 * reference a literal `$`.
 */
function expandGoTemplate(template: string, match: string): string {
  let out = '';
  let rest = template;
  for (let dollar = rest.indexOf('$'); dollar >= 0; dollar = rest.indexOf('$')) {
    out += rest.slice(0, dollar);
    rest = rest.slice(dollar + 1);
    if (rest.startsWith('$')) {
      out += '$';
      rest = rest.slice(1);
      continue;
    }
    const ref = /^(?:\{([\p{L}\p{Nd}_]+)\}|([\p{L}\p{Nd}_]+))/u.exec(rest);
    if (ref === null) {
      out += '$';
      continue;
    }
    rest = rest.slice(ref[0].length);
    if ((ref[1] ?? ref[2]) === '0') out += match;
  }
  return out + rest;
}

/** Go's %q, so messages read like BuildKit's `failed to process "…"`. */
function goQuote(text: string): string {
  let out = '"';
  for (const ch of text) out += quoteChar(ch);
  return `${out}"`;
}

const GO_NAMED_ESCAPES: Record<string, string> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
  '\\': '\\\\',
  '"': '\\"',
};

function quoteChar(ch: string): string {
  const named = GO_NAMED_ESCAPES[ch];
  if (named !== undefined) return named;
  if (ch === ' ' || /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(ch)) return ch;
  const cp = ch.codePointAt(0) ?? 0;
  if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return `\\U${cp.toString(16).padStart(8, '0')}`;
}
