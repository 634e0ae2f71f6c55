/**
 * Finds heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) in an
 * instruction line, as BuildKit does: split the line into shell words with
 * quotes kept, then read each word as a possible marker.
 */
export interface HeredocMarker {
  /** Delimiter with quotes removed. */
  name: string;
  /** false when any part of the delimiter was quoted: the body is taken literally. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body and the terminator. */
  chomp: boolean;
  /** `3<<EOF` form; 0 when absent. */
  fd: number;
  /** The marker word as written, e.g. `<<-"EOF"`. */
  raw: string;
}

const MARKER = /^(\d*)<<(-?)([^<]*)$/;

/** Splits on unquoted blanks, keeping quotes and escapes as written (BuildKit's parseWords). */
export function rawShellWords(line: string, escape: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      word += ch;
      if (ch === escape && quote === '"' && i + 1 < line.length) word += line[++i]!;
      else if (ch === quote) quote = null;
      continue;
    }
    if (ch === ' ' || ch === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (ch === escape && i + 1 === line.length) continue; // a trailing escape is dropped
    word += ch;
    if (ch === escape) word += line[++i]!;
    else if (ch === '"' || ch === "'") quote = ch;
  }
  if (inWord) words.push(word);
  return words;
}

/** Removes quotes and escapes from a delimiter word; reports whether any were there. */
function unquoteDelimiter(word: string, escape: string): { name: string; quoted: boolean } {
  let name = '';
  let quoted = false;
  let quote: string | null = null;
  for (let i = 0; i < word.length; i++) {
    const ch = word[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else name += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      quoted = true;
    } else if (ch === escape && i + 1 < word.length) {
      name += word[++i]!;
      quoted = true;
    } else name += ch;
  }
  return { name, quoted };
}

export function parseHeredocMarker(word: string, escape: string): HeredocMarker | undefined {
  const m = MARKER.exec(word);
  if (!m || m[3] === '') return undefined;
  const { name, quoted } = unquoteDelimiter(m[3]!, escape);
  if (name === '') return undefined;
  return { name, expand: !quoted, chomp: m[2] === '-', fd: m[1] ? Number(m[1]) : 0, raw: word };
}

export function findHeredocs(line: string, escape: string): HeredocMarker[] {
  const out: HeredocMarker[] = [];
  for (const word of rawShellWords(line, escape)) {
    const marker = parseHeredocMarker(word, escape);
    if (marker) out.push(marker);
  }
  return out;
}
