/**
 * Builder flags (`--from=x`, `--link`) at the start of an instruction's
 * arguments. Extraction follows BuildKit: leading words starting with `--`,
 * quotes and backslashes honoured inside them, a bare `--` ends the flags.
 */
export interface RawFlag {
  /** Without the leading `--`. */
  name: string;
  /** undefined for `--name` with no `=`. */
  value: string | undefined;
  /** Offset of the flag's first `-` within the argument text. */
  offset: number;
}

export interface ExtractedFlags {
  flags: RawFlag[];
  /** The rest of the arguments, and its offset within the argument text. */
  rest: string;
  restOffset: number;
}

const isSpace = (ch: string | undefined): boolean => ch === ' ' || ch === '\t';

export function extractFlags(args: string): ExtractedFlags {
  const flags: RawFlag[] = [];
  let pos = 0;
  for (;;) {
    while (isSpace(args[pos])) pos++;
    if (pos >= args.length) return { flags, rest: '', restOffset: pos };
    if (!(args[pos] === '-' && args[pos + 1] === '-')) return { flags, rest: args.slice(pos), restOffset: pos };
    const start = pos;
    let word = '';
    let quoted = false;
    while (pos < args.length && !isSpace(args[pos])) {
      const ch = args[pos]!;
      if (ch === '"' || ch === "'") {
        quoted = true;
        pos++;
        while (pos < args.length && args[pos] !== ch) {
          if (args[pos] === '\\' && pos + 1 < args.length) pos++;
          word += args[pos]!;
          pos++;
        }
        pos++; // closing quote
        continue;
      }
      if (ch === '\\' && pos + 1 < args.length) pos++;
      word += args[pos]!;
      pos++;
    }
    if (word === '--' && !quoted) {
      while (isSpace(args[pos])) pos++;
      return { flags, rest: args.slice(pos), restOffset: pos };
    }
    const body = word.slice(2);
    const eq = body.indexOf('=');
    flags.push(eq < 0 ? { name: body, value: undefined, offset: start } : { name: body.slice(0, eq), value: body.slice(eq + 1), offset: start });
  }
}

export type FlagKind = 'string' | 'bool' | 'strings';

export type FlagSpecs = Readonly<Record<string, FlagKind>>;

/** Parsed flag values: string flags as string, bool as boolean, repeatable as string[]. */
export interface ParsedFlags {
  strings: Map<string, string>;
  bools: Map<string, boolean>;
  lists: Map<string, string[]>;
  /** Offset of each flag given, for errors about its value. */
  offsets: Map<string, number>;
}

export class FlagError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

/** Checks flags against an instruction's specs, with BuildKit's messages. */
export function parseFlags(raw: RawFlag[], specs: FlagSpecs): ParsedFlags {
  const out: ParsedFlags = { strings: new Map(), bools: new Map(), lists: new Map(), offsets: new Map() };
  for (const flag of raw) {
    const kind = specs[flag.name];
    if (flag.name === '') throw new FlagError('empty flag name', flag.offset);
    if (!kind) throw new FlagError(`unknown flag: ${flag.name}`, flag.offset);
    out.offsets.set(flag.name, flag.offset);
    if (kind === 'bool') {
      if (out.bools.has(flag.name)) throw new FlagError(`duplicate flag specified: ${flag.name}`, flag.offset);
      const v = flag.value === undefined ? 'true' : flag.value.toLowerCase();
      if (v !== 'true' && v !== 'false') throw new FlagError(`expecting boolean value for flag ${flag.name}, not: ${flag.value}`, flag.offset);
      out.bools.set(flag.name, v === 'true');
    } else if (kind === 'string') {
      if (out.strings.has(flag.name)) throw new FlagError(`duplicate flag specified: ${flag.name}`, flag.offset);
      if (flag.value === undefined) throw new FlagError(`missing a value on flag: ${flag.name}`, flag.offset);
      out.strings.set(flag.name, flag.value);
    } else {
      if (flag.value === undefined) throw new FlagError(`missing a value on flag: ${flag.name}`, flag.offset);
      const list = out.lists.get(flag.name) ?? [];
      list.push(flag.value);
      out.lists.set(flag.name, list);
    }
  }
  return out;
}
