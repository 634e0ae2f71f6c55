/** The argument shapes BuildKit's parser knows: JSON arrays, name=value lists, plain words. */
import { rawShellWords } from './heredoc.js';

/** Exec form: a JSON array of strings decoded from the raw text, or undefined (= shell form). */
export function parseJsonArray(text: string): string[] | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) return undefined;
  return value;
}

export function splitWhitespace(text: string): string[] {
  return text.split(/[ \t\v\f\r]+/).filter((w) => w !== '');
}

export interface RawPair {
  key: string;
  /** Unexpanded, quotes still in place. */
  value: string;
}

export class FormError extends Error {}

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
    if (eq < 0) throw new FormError(`Syntax error - can't find = in "${word}". Must be of the form: name=value`);
    return { key: word.slice(0, eq), value: word.slice(eq + 1) };
  });
  return { pairs, legacy: false };
}
