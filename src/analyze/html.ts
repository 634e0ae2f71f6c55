/**
 * `tsbuild analyze --html FILE`: one self-contained page (inline CSS and SVG, no
 * script, no external asset): a stacked bar per layer (bytes that stay, bytes a
 * later layer hides), the chainID chain as a linked list, a collapsible file tree
 * per layer (`<details>`), the wasted paths and the advice.
 */
import { humanSize, shortId } from '../cli/dockerfmt.js';
import type { Analysis } from './analyze.js';
import type { EntryStatus } from './changes.js';
import type { LayerEntry } from './entries.js';
import { percent, stepText } from './format.js';

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}
code,.mono{font-family:"DejaVu Sans Mono",ui-monospace,monospace;font-size:12px}
.summary{display:flex;gap:16px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #dde;border-radius:6px;padding:8px 12px;min-width:140px}
.card b{display:block;font-size:18px}
.kept{fill:#3b7dd8}.waste{fill:#e0463a}.empty{fill:#c8ccd6}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:-2px}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eef;text-align:left;vertical-align:top}
th{background:#f4f6fa}
.chain{overflow-x:auto}
details{margin-left:14px}summary{cursor:pointer}
ul.files{list-style:none;margin:0;padding-left:18px}
.added{color:#1a7f37}.modified{color:#9a6700}.deleted{color:#cf222e;text-decoration:line-through}.opaque{color:#8250df}
.hidden{background:#ffe3e0}
.advice li{margin:6px 0}
.kind{display:inline-block;background:#eef;border-radius:4px;padding:0 6px;margin-right:6px;font-size:12px}
`;

function bars(a: Analysis): string {
  const { json } = a;
  const rowH = 26;
  const labelW = 360;
  const barW = 520;
  const max = Math.max(1, ...json.layers.map((l) => l.contentSize));
  const rows = json.layers.map((l, i) => {
    const y = i * rowH + 4;
    const kept = l.contentSize - l.wastedBytes;
    const wk = l.contentSize === 0 ? 0 : Math.max(1, (kept / max) * barW);
    const ww = l.wastedBytes === 0 ? 0 : Math.max(2, (l.wastedBytes / max) * barW);
    const step = json.steps.find((s) => s.index === l.step);
    const label = `L${i} ${step?.source ? `:${step.source.line} ` : ''}${step ? stepText(step, 44) : ''}`;
    return (
      `<g class="bar" data-layer="${i}" data-size="${l.contentSize}" data-wasted="${l.wastedBytes}">` +
      `<title>${esc(`layer ${i}: ${l.contentSize} bytes, ${l.wastedBytes} hidden by later layers`)}</title>` +
      `<text x="0" y="${y + 15}" class="mono">${esc(label)}</text>` +
      (l.contentSize === 0 ? `<rect class="empty" x="${labelW}" y="${y}" width="2" height="${rowH - 8}"/>` : '') +
      (wk > 0 ? `<rect class="kept" x="${labelW}" y="${y}" width="${wk.toFixed(1)}" height="${rowH - 8}"/>` : '') +
      (ww > 0 ? `<rect class="waste" x="${(labelW + wk).toFixed(1)}" y="${y}" width="${ww.toFixed(1)}" height="${rowH - 8}"/>` : '') +
      `<text x="${(labelW + wk + ww + 6).toFixed(1)}" y="${y + 15}" class="mono">${esc(humanSize(l.contentSize))}${l.wastedBytes > 0 ? esc(` (${humanSize(l.wastedBytes)} wasted)`) : ''}</text>` +
      `</g>`
    );
  });
  const h = json.layers.length * rowH + 8;
  return `<svg id="bars" xmlns="http://www.w3.org/2000/svg" width="${labelW + barW + 200}" height="${h}" role="img" aria-label="layer sizes">${rows.join('')}</svg>
<div class="legend"><span class="kept" style="background:#3b7dd8"></span>bytes that stay<span style="background:#e0463a"></span>bytes a later layer deletes or overwrites (waste)</div>`;
}

function chain(a: Analysis): string {
  const { json } = a;
  const boxW = 250;
  const gap = 50;
  const boxH = 104;
  const nodes = json.layers.map((l, i) => {
    const x = i * (boxW + gap) + 4;
    const formula = i === 0 ? ['ChainID(0) = DiffID(0)', ''] : [`ChainID(${i}) = sha256(`, `  ChainID(${i - 1}) + " " + DiffID(${i}))`];
    const arrow = i === 0 ? '' : `<line class="link" x1="${x}" y1="${boxH / 2 + 4}" x2="${x - gap + 6}" y2="${boxH / 2 + 4}" stroke="#555" stroke-width="2" marker-end="url(#arrow)"/>`;
    return (
      `<g class="chain-node" data-chain-id="${l.chainId}">` +
      `<rect x="${x}" y="4" width="${boxW}" height="${boxH}" rx="6" fill="#f4f6fa" stroke="#8a94a8"/>` +
      `<text x="${x + 8}" y="22" class="mono" font-weight="bold">chain ${esc(shortId(l.chainId))}</text>` +
      `<text x="${x + 8}" y="40" class="mono">diff  ${esc(shortId(l.diffId))}</text>` +
      `<text x="${x + 8}" y="58" class="mono">cache ${esc(l.cacheId.slice(0, 12))}</text>` +
      `<text x="${x + 8}" y="78" class="mono" font-size="11">${esc(formula[0]!)}</text>` +
      `<text x="${x + 8}" y="92" class="mono" font-size="11">${esc(formula[1]!)}</text>` +
      `</g>${arrow}`
    );
  });
  const w = json.layers.length * (boxW + gap);
  return `<div class="chain"><svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${boxH + 10}">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="#555"/></marker></defs>${nodes.join('')}</svg></div>
<p>Each layer's chainID names its <code>layerdb/sha256/&lt;chainID&gt;/</code> directory; the arrow is its <code>parent</code> file.</p>`;
}

interface TreeNode {
  children: Map<string, TreeNode>;
  entry?: LayerEntry;
  status?: EntryStatus;
  hidden?: boolean;
}

const MAX_TREE_ENTRIES = 5000;

function fileTree(entries: readonly LayerEntry[], status: readonly EntryStatus[], hidden: readonly boolean[]): string {
  const root: TreeNode = { children: new Map() };
  const shown = Math.min(entries.length, MAX_TREE_ENTRIES);
  for (let i = 0; i < shown; i++) {
    const e = entries[i]!;
    let node = root;
    const parts = e.path.split('/').filter((p) => p !== '');
    if (e.kind === 'opaque') parts.push('(opaque: lower contents hidden)');
    for (const p of parts) {
      let next = node.children.get(p);
      if (!next) node.children.set(p, (next = { children: new Map() }));
      node = next;
    }
    node.entry = e;
    node.status = status[i] ?? 'unchanged';
    node.hidden = hidden[i] ?? false;
  }
  const render = (name: string, n: TreeNode, depth: number): string => {
    const e = n.entry;
    const cls = [n.status && n.status !== 'unchanged' ? n.status : '', n.hidden ? 'hidden' : ''].filter(Boolean).join(' ');
    const info = e ? ` <span class="mono">${e.kind === 'file' ? esc(humanSize(e.size)) : e.kind}${e.kind === 'symlink' || e.kind === 'hardlink' ? ' → ' + esc(e.linkname) : ''} ${e.mode.toString(8).padStart(4, '0')} ${e.uid}:${e.gid}</span>` : '';
    const label = `<span class="${cls}">${esc(name)}</span>${info}${n.hidden ? ' <b class="deleted" style="text-decoration:none">wasted</b>' : ''}`;
    if (n.children.size === 0) return `<li>${label}</li>`;
    const kids = [...n.children.entries()].sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, c]) => render(k, c, depth + 1));
    return `<li><details${depth < 1 ? ' open' : ''}><summary>${label}/</summary><ul class="files">${kids.join('')}</ul></details></li>`;
  };
  const top = [...root.children.entries()].sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, c]) => render(k, c, 0));
  const more = entries.length > shown ? `<li>… ${entries.length - shown} more entries not shown</li>` : '';
  return `<ul class="files">${top.join('')}${more}</ul>`;
}

export function htmlReport(a: Analysis): string {
  const { json } = a;
  const name = json.image.refs[0] ?? shortId(json.image.id);
  const layerTrees = json.layers
    .map((l, i) => {
      const step = json.steps.find((s) => s.index === l.step);
      const title = `Layer ${i}${step?.source ? ` (line ${step.source.line})` : ''}: ${step ? stepText(step, 80) : ''} — ${humanSize(l.contentSize)}, +${l.added} ~${l.modified} -${l.deleted}${l.wastedBytes ? `, ${humanSize(l.wastedBytes)} wasted` : ''}`;
      return `<details class="layer" data-layer="${i}"><summary>${esc(title)}</summary>${fileTree(a.entries[i] ?? [], a.changes.status[i] ?? [], a.changes.hiddenLater[i] ?? [])}</details>`;
    })
    .join('\n');
  const advice =
    json.advice.length === 0
      ? '<p>No advice: no layer holds bytes a later layer deletes, overwrites or copies up.</p>'
      : `<ul class="advice">${json.advice.map((x) => `<li><span class="kind">${esc(x.kind)}</span>${esc(x.message)}</li>`).join('')}</ul>`;
  const wasted =
    json.inefficiencies.length === 0
      ? '<p>No path is in more than one layer.</p>'
      : `<table><tr><th>count</th><th>total space</th><th>layers</th><th>path</th></tr>${json.inefficiencies
          .slice(0, 100)
          .map((i) => `<tr><td>${i.count}</td><td>${esc(humanSize(i.cumulativeSize))}</td><td>${i.layers.join(', ')}</td><td class="mono">${esc(i.path)}</td></tr>`)
          .join('')}</table>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(`tsbuild analyze: ${name}`)}</title><style>${CSS}</style></head>
<body>
<h1>${esc(name)}</h1>
<div class="mono">${esc(json.image.id)}</div>
<div class="summary">
<div class="card">size<b>${esc(humanSize(json.image.size))}</b></div>
<div class="card">layers<b>${json.layers.length}</b></div>
<div class="card">efficiency<b>${esc(percent(json.efficiency))}</b></div>
<div class="card">wasted bytes<b>${esc(humanSize(json.wastedBytes))}</b></div>
<div class="card">reclaimable<b>${esc(humanSize(json.reclaimableBytes))}</b></div>
</div>
<h2>Layer sizes</h2>
${bars(a)}
<h2>Chain IDs</h2>
${chain(a)}
<h2>Advice</h2>
${advice}
<h2>Wasted paths</h2>
${wasted}
<h2>Files per layer</h2>
<p><span class="added">added</span> · <span class="modified">modified</span> · <span class="deleted">deleted</span> · <span class="opaque">opaque dir</span> · <span class="hidden">hidden by a later layer</span></p>
${layerTrees}
</body></html>
`;
}
