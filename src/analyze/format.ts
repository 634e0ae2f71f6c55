/** Text reports for `layers`, `analyze` and `compare` (the JSON forms are the analysis objects themselves). */
import { humanSize, shortId, tabwrite } from '../cli/dockerfmt.js';
import type { AnalysisJson, CiResult } from './analyze.js';
import type { Step } from './steps.js';

export function percent(x: number): string {
  return `${(x * 100).toFixed(2)} %`;
}

export function stepText(s: Step, width = 50): string {
  const t = s.source?.text ?? s.createdBy.replace(/^.*#\(nop\)\s+/, '').replace(/^\/bin\/sh -c /, 'RUN ');
  const oneLine = (t || s.comment || '').replace(/\s+/g, ' ');
  return width > 0 && oneLine.length > width ? `${oneLine.slice(0, width - 3)}...` : oneLine;
}

function lineOf(s: Step): string {
  return s.source ? `${s.source.line}` : s.inherited ? 'base' : '-';
}

export interface LayersRow {
  step: number;
  line: number | null;
  instruction: string;
  createdBy: string;
  emptyLayer: boolean;
  inherited: boolean;
  source: Step['source'];
  layer: number | null;
  diffId: string | null;
  chainId: string | null;
  cacheId: string | null;
  size: number;
  contentSize: number;
  added: number;
  modified: number;
  deleted: number;
  wastedBytes: number;
}

/** `tsbuild layers`: one row per step (history entry). */
export function layersRows(a: AnalysisJson): LayersRow[] {
  return a.steps.map((s) => {
    const l = s.layer === null ? undefined : a.layers[s.layer];
    return {
      step: s.index,
      line: s.source?.line ?? null,
      instruction: s.instruction,
      createdBy: s.createdBy,
      emptyLayer: s.emptyLayer,
      inherited: s.inherited,
      source: s.source,
      layer: s.layer,
      diffId: l?.diffId ?? null,
      chainId: l?.chainId ?? null,
      cacheId: l?.cacheId ?? null,
      size: l?.size ?? 0,
      contentSize: l?.contentSize ?? 0,
      added: l?.added ?? 0,
      modified: l?.modified ?? 0,
      deleted: l?.deleted ?? 0,
      wastedBytes: l?.wastedBytes ?? 0,
    };
  });
}

export function formatLayers(a: AnalysisJson, trunc: boolean): string {
  const id = (d: string | null) => (d === null ? '-' : trunc ? shortId(d) : d);
  const rows = [['STEP', 'LINE', 'INSTRUCTION', 'DIFF ID', 'CHAIN ID', 'CACHE ID', 'SIZE', 'ADDED', 'MODIFIED', 'DELETED']];
  for (const s of a.steps) {
    const l = s.layer === null ? undefined : a.layers[s.layer];
    rows.push([
      String(s.index),
      lineOf(s),
      stepText(s, trunc ? 40 : 0) + (s.emptyLayer ? ' (empty)' : ''),
      id(l?.diffId ?? null),
      id(l?.chainId ?? null),
      l ? (trunc ? l.cacheId.slice(0, 12) : l.cacheId) : '-',
      l ? humanSize(l.size) : '0B',
      l ? String(l.added) : '-',
      l ? String(l.modified) : '-',
      l ? String(l.deleted) : '-',
    ]);
  }
  return `${a.image.refs[0] ?? shortId(a.image.id)}: ${a.layers.length} layers, ${a.steps.length} steps, ${humanSize(a.image.size)}\n` + tabwrite(rows);
}

export function formatAnalysis(a: AnalysisJson, opts: { paths?: number } = {}): string {
  const out: string[] = [];
  out.push(`Image: ${a.image.refs.join(', ') || '<untagged>'} ${a.image.id}`);
  out.push(`Total size: ${humanSize(a.image.size)} (file contents ${a.image.contentSize} bytes) in ${a.layers.length} layers`);
  out.push('');
  const rows = [['LAYER', 'STEP', 'LINE', 'SIZE', 'ADDED', 'MODIFIED', 'DELETED', 'WASTED', 'INSTRUCTION']];
  for (const l of a.layers) {
    const s = a.steps.find((x) => x.index === l.step);
    rows.push([String(l.index), String(l.step), s ? lineOf(s) : '-', humanSize(l.contentSize), String(l.added), String(l.modified), String(l.deleted), l.wastedBytes > 0 ? humanSize(l.wastedBytes) : '0B', s ? stepText(s) : '']);
  }
  out.push(tabwrite(rows).trimEnd());
  out.push('');
  out.push(`Efficiency:            ${percent(a.efficiency)}`);
  out.push(`Wasted bytes:          ${a.wastedBytes} (${humanSize(a.wastedBytes)})`);
  out.push(`User wasted percent:   ${percent(a.wastedUserPercent)} of ${humanSize(a.userSize)} above the first layer`);
  out.push(`Reclaimable bytes:     ${a.reclaimableBytes} (${humanSize(a.reclaimableBytes)}) hidden by later layers`);
  const n = opts.paths ?? 20;
  if (a.inefficiencies.length > 0) {
    out.push('');
    out.push('Wasted paths (dive: paths in more than one layer):');
    const t = [['COUNT', 'TOTAL SPACE', 'LAYERS', 'PATH']];
    for (const i of a.inefficiencies.slice(0, n)) t.push([String(i.count), humanSize(i.cumulativeSize), i.layers.join(','), i.path]);
    out.push(tabwrite(t).trimEnd());
    if (a.inefficiencies.length > n) out.push(`… and ${a.inefficiencies.length - n} more`);
  }
  out.push('');
  if (a.advice.length === 0) out.push('Advice: none — no layer holds bytes a later layer deletes, overwrites or copies up.');
  else {
    out.push('Advice:');
    for (const adv of a.advice) out.push(`  - [${adv.kind}] ${adv.message}`);
  }
  return out.join('\n') + '\n';
}

export function formatCi(results: CiResult[]): string {
  const lines = results.map((r) => `  ${r.pass ? 'PASS' : 'FAIL'}: ${r.rule}: ${r.rule === 'highestWastedBytes' ? `${r.value} bytes (limit ${r.limit})` : `${percent(r.value)} (limit ${percent(r.limit)})`}`);
  const failed = results.filter((r) => !r.pass).length;
  return `CI rules:\n${lines.join('\n')}\nResult: ${failed === 0 ? 'PASS' : 'FAIL'} [Total:${results.length}] [Passed:${results.length - failed}] [Failed:${failed}]\n`;
}

/** `tsbuild compare`: the two images' layers side by side, shared ones marked. */
export function formatCompare(a: AnalysisJson, b: AnalysisJson): string {
  const name = (x: AnalysisJson) => x.image.refs[0] ?? shortId(x.image.id);
  const rows = [['#', `A: ${name(a)}`, 'SIZE A', '', `B: ${name(b)}`, 'SIZE B']];
  const n = Math.max(a.layers.length, b.layers.length);
  const label = (x: AnalysisJson, i: number) => {
    const l = x.layers[i];
    if (!l) return ['', ''];
    const s = x.steps.find((st) => st.index === l.step);
    return [(s ? stepText(s, 40) : '') + (s?.source ? ` [${s.source.line}]` : ''), humanSize(l.size)];
  };
  for (let i = 0; i < n; i++) {
    const same = a.layers[i] && b.layers[i] && a.layers[i]!.chainId === b.layers[i]!.chainId;
    const [ta, sa] = label(a, i);
    const [tb, sb] = label(b, i);
    rows.push([String(i), ta!, sa!, same ? '=' : '≠', tb!, sb!]);
  }
  const out = [tabwrite(rows).trimEnd(), ''];
  const t = [['', 'A', 'B', 'B - A']];
  const diff = (x: number, y: number) => `${y - x >= 0 ? '+' : '-'}${humanSize(Math.abs(y - x))}`;
  t.push(['size', humanSize(a.image.size), humanSize(b.image.size), diff(a.image.size, b.image.size)]);
  t.push(['layers', String(a.layers.length), String(b.layers.length), String(b.layers.length - a.layers.length)]);
  t.push(['wasted bytes', humanSize(a.wastedBytes), humanSize(b.wastedBytes), diff(a.wastedBytes, b.wastedBytes)]);
  t.push(['efficiency', percent(a.efficiency), percent(b.efficiency), `${((b.efficiency - a.efficiency) * 100).toFixed(2)} pt`]);
  const shared = a.layers.filter((l, i) => b.layers[i]?.chainId === l.chainId).length;
  out.push(tabwrite(t).trimEnd());
  out.push(`shared layers (same chainID at the same position): ${shared}`);
  return out.join('\n') + '\n';
}
