/** Docker CLI presentation: go-units sizes and durations, short IDs, tabwriter tables. */

/** Go's `%.<prec>g`: shortest of %e/%f at that many significant digits, trailing zeros dropped. */
export function goFormatG(x: number, prec: number): string {
  if (x === 0) return '0';
  const [mantissa, expText] = x.toExponential(prec - 1).split('e') as [string, string];
  const exp = Number(expText);
  const strip = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exp < -4 || exp >= prec) return `${strip(mantissa)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return strip(x.toFixed(Math.max(0, prec - 1 - exp)));
}

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** go-units HumanSizeWithPrecision(size, 3): `0B`, `1.24MB`, `123kB`. */
export function humanSize(bytes: number, precision = 3): string {
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < DECIMAL_UNITS.length - 1) {
    size /= 1000;
    i++;
  }
  return goFormatG(size, precision) + DECIMAL_UNITS[i]!;
}

/** go-units HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3_600_000 / 24 / 365)} years`;
}

export function ago(created: string, now = Date.now()): string {
  const t = Date.parse(created);
  return Number.isNaN(t) ? 'N/A' : `${humanDuration(now - t)} ago`;
}

/** stringid.TruncateID: drop `sha256:`, keep 12 hex digits. */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** Go text/tabwriter with Docker's settings (minwidth 10, padding 3); the last column is not padded. */
export function tabwrite(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.slice(0, -1).forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, Math.max(10, [...cell].length + 3))));
  return rows.map((row) => row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]! - ([...cell].length - cell.length)) : cell)).join('').replace(/\s+$/, '')).join('\n') + '\n';
}

/** stringutils.Ellipsis as the docker 20.10 CLI truncates CREATED BY. */
export function ellipsis(s: string, max: number): string {
  const runes = [...s];
  if (runes.length <= max) return s;
  if (max <= 3) return runes.slice(0, max).join('');
  return runes.slice(0, max - 3).join('') + '...';
}
