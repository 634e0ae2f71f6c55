/**
 * Go formatting that Docker's classic builder puts into history text:
 * `%q` of strings and string slices, `%v` of slices, time.Duration strings,
 * and time.ParseDuration for HEALTHCHECK flags.
 */

function isPrintable(cp: number): boolean {
  if (cp < 0x20 || cp === 0x7f) return false;
  // ASCII needs no Unicode tables (the first \p{…} test builds them: ≈ 5 ms per process).
  if (cp < 0x7f) return true;
  if (cp >= 0x80 && cp < 0xa0) return false;
  if (cp === 0xad) return false; // soft hyphen is not graphic in Go
  if (cp >= 0xd800 && cp <= 0xdfff) return false;
  if (cp === 0xfffd) return true;
  return /[\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}]/u.test(String.fromCodePoint(cp)) && (cp === 0x20 || !/\p{Zs}/u.test(String.fromCodePoint(cp)));
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

function escapeRune(cp: number, quote: string): string {
  if (cp === quote.codePointAt(0) || cp === 0x5c) return '\\' + String.fromCodePoint(cp);
  if (isPrintable(cp)) return String.fromCodePoint(cp);
  switch (cp) {
    case 0x07: return '\\a';
    case 0x08: return '\\b';
    case 0x0c: return '\\f';
    case 0x0a: return '\\n';
    case 0x0d: return '\\r';
    case 0x09: return '\\t';
    case 0x0b: return '\\v';
  }
  if (cp < 0x80) return '\\x' + hex(cp, 2);
  if (cp < 0x10000) return '\\u' + hex(cp, 4);
  return '\\U' + hex(cp, 8);
}

/** Go's strconv.Quote. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) out += escapeRune(ch.codePointAt(0)!, '"');
  return out + '"';
}

/** Go's `%q` of an int (as a rune literal), e.g. 3 → '\x03'. */
export function goQuoteRune(n: number): string {
  return "'" + escapeRune(n, "'") + "'";
}

/** Go's `%q` of a []string: `["a" "b"]`. */
export function goQuoteSlice(items: readonly string[]): string {
  return '[' + items.map(goQuote).join(' ') + ']';
}

/** Go's `%v` of a []string: `[a b]`. */
export function goSlice(items: readonly string[]): string {
  return '[' + items.join(' ') + ']';
}

const NS = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 } as const;

/** Go's time.ParseDuration, returning nanoseconds; undefined when invalid. */
export function parseGoDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  const re = /^(\d*\.?\d*)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/;
  while (s.length > 0) {
    const m = re.exec(s);
    if (!m || m[1] === '' || m[1] === '.') return undefined;
    total += parseFloat(m[1]!) * NS[m[2] as keyof typeof NS];
    s = s.slice(m[0].length);
  }
  return sign * Math.round(total);
}

function fracString(value: number, digits: number): string {
  // value is an integer count of 10^-digits units; trailing zeros dropped.
  const whole = Math.floor(value / 10 ** digits);
  let frac = String(value % 10 ** digits).padStart(digits, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

/** Go's time.Duration.String() for nanoseconds: 1m30s, 500ms, 0s. */
export function goDuration(nanos: number): string {
  if (nanos === 0) return '0s';
  const neg = nanos < 0;
  const n = Math.abs(nanos);
  let out: string;
  if (n < 1e9) {
    if (n < 1e3) out = `${n}ns`;
    else if (n < 1e6) out = `${fracString(n, 3)}µs`;
    else out = `${fracString(n, 6)}ms`;
  } else {
    const h = Math.floor(n / 3600e9);
    const m = Math.floor((n % 3600e9) / 60e9);
    const sNanos = n % 60e9;
    const sec = fracString(sNanos, 9) + 's';
    out = h > 0 ? `${h}h${m}m${sec}` : m > 0 ? `${m}m${sec}` : sec;
  }
  return neg ? '-' + out : out;
}
