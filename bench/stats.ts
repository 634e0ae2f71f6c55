/** Medians, ratios and the markdown table of a bench run. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** One builder on one fixture: wall times (ms) of cold and warm builds, peak RSS (MiB) when measured. */
export interface Sample {
  cold: number[];
  warm: number[];
  rssMiB?: number[];
}

export interface FixtureResult {
  /** builder name → samples (tsbuild, docker classic, buildkit, buildah). */
  builders: Record<string, Sample>;
  /** Floor measurements of the same work (ms). */
  floors: Record<string, number[]>;
  notes: string[];
}

export function ms(x: number): string {
  if (!Number.isFinite(x)) return '–';
  return x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`;
}

export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–';
}

const ANCHORS = ['docker classic', 'buildkit', 'buildah'] as const;

/** A markdown table row; `|` inside a cell is escaped. */
const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;

/**
 * The README table: one row per fixture and kind (cold, warm), medians per builder,
 * then tsbuild's ratio to BuildKit, to the fastest anchor and to the floor.
 */
export function markdownTable(results: Record<string, FixtureResult>): string {
  const present = ANCHORS.filter((a) => Object.values(results).some((r) => r.builders[a] !== undefined));
  const head = ['fixture', 'build', 'tsbuild', ...present, 'tsbuild / BuildKit', 'tsbuild / fastest anchor', 'floor', 'tsbuild / floor', 'tsbuild peak RSS'];
  const rows: string[][] = [];
  for (const [name, r] of Object.entries(results)) {
    const ours = r.builders['tsbuild'];
    if (ours === undefined) continue;
    const floors = Object.entries(r.floors);
    for (const kind of ['cold', 'warm'] as const) {
      const t = median(ours[kind]);
      const anchors = present.map((a) => median(r.builders[a]?.[kind] ?? []));
      const fastest = Math.min(...anchors.filter(Number.isFinite));
      const bk = median(r.builders['buildkit']?.[kind] ?? []);
      const fs = kind === 'cold' ? floors.map(([n, xs]) => [n, median(xs)] as const) : [];
      const rss = kind === 'cold' && ours.rssMiB && ours.rssMiB.length > 0 ? `${Math.max(...ours.rssMiB).toFixed(0)} MiB` : '';
      rows.push([name, kind, ms(t), ...anchors.map(ms), ratio(t, bk), ratio(t, fastest), fs.map(([n, f]) => `${ms(f)} (${n})`).join('; '), fs.length > 0 ? fs.map(([, f]) => ratio(t, f)).join('; ') : ratio(t, NaN), rss]);
    }
  }
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The scale series: build time against context size or number of steps. */
export function scaleTable(series: Array<{ name: string; size: number; cold: number[]; warm: number[] }>): string {
  const out = [line(['series', 'size', 'tsbuild cold', 'tsbuild warm', 'cold per unit', 'warm per unit']), line(['---', '---', '---', '---', '---', '---'])];
  const per = (x: number) => (x >= 1 ? `${x.toFixed(1)} ms` : `${(x * 1000).toFixed(0)} µs`);
  for (const s of series) out.push(line([s.name, String(s.size), ms(median(s.cold)), ms(median(s.warm)), per(median(s.cold) / s.size), per(median(s.warm) / s.size)]));
  return out.join('\n');
}
