/** `tsbuild compare`: two analyses side by side (`tsbuild.compare/v1`). */
import type { AnalysisJson, LayerReport } from './analyze.js';
import { layersRows, type LayersRow } from './format.js';

export interface CompareSide {
  id: string;
  refs: string[];
  size: number;
  layers: number;
  efficiency: number;
  wastedBytes: number;
  reclaimableBytes: number;
}

export interface CompareJson {
  schema: 'tsbuild.compare/v1';
  a: CompareSide;
  b: CompareSide;
  /** Layer by position: each side's layer (with its step) or null, and whether both are the same chainID. */
  layers: { index: number; shared: boolean; a: (LayerReport & { row: LayersRow }) | null; b: (LayerReport & { row: LayersRow }) | null }[];
  delta: { size: number; layers: number; wastedBytes: number; efficiency: number };
}

function side(x: AnalysisJson): CompareSide {
  return { id: x.image.id, refs: x.image.refs, size: x.image.size, layers: x.layers.length, efficiency: x.efficiency, wastedBytes: x.wastedBytes, reclaimableBytes: x.reclaimableBytes };
}

export function compareJson(a: AnalysisJson, b: AnalysisJson): CompareJson {
  const rowsA = layersRows(a);
  const rowsB = layersRows(b);
  const n = Math.max(a.layers.length, b.layers.length);
  const layers: CompareJson['layers'] = [];
  for (let i = 0; i < n; i++) {
    const la = a.layers[i];
    const lb = b.layers[i];
    layers.push({
      index: i,
      shared: !!la && !!lb && la.chainId === lb.chainId,
      a: la ? { ...la, row: rowsA.find((r) => r.layer === i)! } : null,
      b: lb ? { ...lb, row: rowsB.find((r) => r.layer === i)! } : null,
    });
  }
  return {
    schema: 'tsbuild.compare/v1',
    a: side(a),
    b: side(b),
    layers,
    delta: { size: b.image.size - a.image.size, layers: b.layers.length - a.layers.length, wastedBytes: b.wastedBytes - a.wastedBytes, efficiency: b.efficiency - a.efficiency },
  };
}
