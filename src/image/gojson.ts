/**
 * JSON bytes as Go's encoding/json writes them: compact, HTML-safe escapes
 * (\u003c \u003e \u0026), \u2028/\u2029 escaped, control characters as \u00XX
 * except \n \r \t. Objects are written in the key order given, so callers
 * control struct-field order; `undefined` members are omitted (omitempty).
 */
export type GoJson = null | boolean | number | string | GoJson[] | { [k: string]: GoJson | undefined };

export function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i]!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) out += '\\u' + c.toString(16).padStart(4, '0');
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += ch + s[i + 1]!;
        i++;
      } else out += '\ufffd'; // Go replaces invalid UTF-16/UTF-8 with U+FFFD
    } else if (c >= 0xdc00 && c <= 0xdfff) out += '\ufffd';
    else out += ch;
  }
  return out + '"';
}

export function goJson(value: GoJson): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return goJsonString(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('json: unsupported value');
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) return '[' + value.map(goJson).join(',') + ']';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(value)) if (v !== undefined) parts.push(goJsonString(k) + ':' + goJson(v));
  return '{' + parts.join(',') + '}';
}

/** A Go map: keys sorted bytewise, as encoding/json writes maps. */
export function goMap<T extends GoJson>(m: Record<string, T> | null | undefined): { [k: string]: T } | null {
  if (!m) return null;
  const out: { [k: string]: T } = {};
  for (const k of Object.keys(m).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) out[k] = m[k]!;
  return out;
}
