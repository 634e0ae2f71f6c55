/** The argument shapes BuildKit's parser knows: JSON arrays, name=value lists, plain words. */
import { rawShellWords } from './heredoc.js';

export class FormError extends Error {
  /** The offending word, when there is one, to point at it. */
  constructor(message: string, readonly word?: string) {
    super(message);
  }
}

/** Exec form: a JSON array of strings decoded from the raw text, or undefined (= shell form); throws FormError for an array of non-strings. */
export function parseJsonArray(text: string): string[] | undefined {
  const trimmed = text.replace(/^\s+/, '');
  if (!trimmed.startsWith('[')) return undefined;
  // Like Go's json.Decoder, BuildKit reads the first JSON value and ignores what follows it.
  const end = firstJsonValueEnd(trimmed);
  if (end < 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed.slice(0, end));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  // A real JSON array of non-strings is an error, not shell form.
  if (!value.every((v): v is string => typeof v === 'string')) throw new FormError('when using JSON array syntax, arrays must be comprised of strings only');
  return value;
}

/** Index just past the array that opens `text`, or -1 when it never closes. */
function firstJsonValueEnd(text: string): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') depth++;
    else if (ch === ']' || ch === '}') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

export function splitWhitespace(text: string): string[] {
  return text.split(/[ \t\v\f\r]+/).filter((w) => w !== '');
}

export interface RawPair {
  key: string;
  /** Unexpanded, quotes still in place. */
  value: string;
}

/**
 * ENV and LABEL: `K=V K2="v 2"`, or the legacy `K value with spaces`.
 * Quotes stay in the values; expansion removes them later.
 */
export function parseNameValue(text: string, keyword: string, escape: string): { pairs: RawPair[]; legacy: boolean } {
  const words = rawShellWords(text, escape);
  if (words.length === 0) return { pairs: [], legacy: false };
  if (!words[0]!.includes('=')) {
    const parts = text.trim().split(/[ \t\v\f\r]+/);
    if (parts.length < 2) throw new FormError(`${keyword} must have two arguments`);
    const key = parts[0]!;
    const value = text.trim().slice(key.length).replace(/^[ \t\v\f\r]+/, '');
    return { pairs: [{ key, value }], legacy: true };
  }
  const pairs = words.map((word) => {
    const eq = word.indexOf('=');
    if (eq < 0) throw new FormError(`Syntax error - can't find = in "${word}". Must be of the form: name=value`, word);
    return { key: word.slice(0, eq), value: word.slice(eq + 1) };
  });
  return { pairs, legacy: false };
}
