/**
 * Efficiency and wasted bytes exactly as dive computes them (wagoodman/dive,
 * `filetree/efficiency.go` and `image/analysis.go`), so the numbers can be put
 * side by side with `dive --ci`. Definitions (see README.md in this folder):
 *
 * - Each layer is a tree of its tar entries (opaque markers `.wh..wh..opq` are
 *   ignored; a whiteout `.wh.x` is a node whose path is `x`).
 * - Every *leaf* of every layer's tree (a node with no children in that layer:
 *   files, links, empty dirs, whiteouts) is one sighting of its path. Its size is
 *   the tar header size; for a whiteout, 0, or, when the path was a directory in
 *   the layers below, the sum of the sizes under it.
 * - Per path: cumulative = the sum of its sightings, minimum = the smallest one.
 * - efficiency = Σ minimum / Σ cumulative over all paths (1 when nothing has a size).
 * - wasted bytes = Σ cumulative over paths sighted in two or more layers (every
 *   copy counts, the surviving one too).
 * - user size = the layers' sizes except the first (sizes = Σ tar header sizes);
 *   wasted user percent = wasted bytes / user size.
 */
import type { LayerEntry } from './entries.js';

const WH = '.wh.';
const OPQ_PREFIX = '.wh..wh..';

interface Info {
  size: number;
  isDir: boolean;
}

const NO_INFO: Info = { size: 0, isDir: false };

class DNode {
  readonly children = new Map<string, DNode>();
  constructor(
    readonly name: string,
    readonly parent: DNode | null,
    public info: Info,
  ) {}

  get isWhiteout(): boolean {
    return this.name.startsWith(WH);
  }

  /** The node's path; a whiteout's own `.wh.` prefix is dropped. */
  path(): string {
    const parts: string[] = [];
    for (let n: DNode | null = this; n && n.parent; n = n.parent) parts.unshift(n === this && n.isWhiteout ? n.name.slice(WH.length) : n.name);
    return '/' + parts.join('/');
  }

  /** Children first, names sorted, the node itself last (never the root). */
  *childFirst(): Generator<DNode> {
    for (const name of [...this.children.keys()].sort()) yield* this.children.get(name)!.childFirst();
    if (this.parent) yield this;
  }

  copy(parent: DNode | null): DNode {
    const n = new DNode(this.name, parent, this.info);
    for (const [k, c] of this.children) n.children.set(k, c.copy(n));
    return n;
  }
}

class DTree {
  root = new DNode('', null, NO_INFO);

  /** dive's AddPath: intermediate nodes get no info; a `.wh..wh..` component is never created. */
  add(path: string, info: Info): void {
    const names = path.split('/').filter((s) => s !== '');
    let node = this.root;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      let next = node.children.get(name);
      if (!next) {
        if (name.startsWith(OPQ_PREFIX)) return;
        next = new DNode(name, node, NO_INFO);
        node.children.set(name, next);
      }
      node = next;
      if (i === names.length - 1) node.info = info;
    }
  }

  get(path: string): DNode | undefined {
    let node: DNode | undefined = this.root;
    for (const name of path.split('/')) {
      if (name === '') continue;
      node = node.children.get(name);
      if (!node) return undefined;
    }
    return node;
  }

  remove(path: string): void {
    const node = this.get(path);
    if (node?.parent) node.parent.children.delete(node.name);
  }

  copy(): DTree {
    const t = new DTree();
    t.root = this.root.copy(null);
    return t;
  }

  /** dive's Stack: the upper tree's nodes, children first; whiteouts remove, others add. */
  stack(upper: DTree): void {
    for (const node of upper.root.childFirst()) {
      if (node.isWhiteout) this.remove(node.path());
      else this.add(node.path(), node.info);
    }
  }
}

/** A layer's tree as dive builds it from the tar: whiteouts keep their `.wh.` name. */
function treeOf(entries: readonly LayerEntry[]): { tree: DTree; size: number } {
  const tree = new DTree();
  let size = 0;
  for (const e of entries) {
    size += e.size;
    if (e.kind === 'opaque') {
      tree.add(`${e.path === '/' ? '' : e.path}/${OPQ_PREFIX}opq`, NO_INFO);
    } else if (e.kind === 'whiteout') {
      const slash = e.path.lastIndexOf('/');
      tree.add(`${e.path.slice(0, slash)}/${WH}${e.path.slice(slash + 1)}`, { size: 0, isDir: false });
    } else {
      tree.add(e.path, { size: e.size, isDir: e.kind === 'dir' });
    }
  }
  return { tree, size };
}

export interface Inefficiency {
  path: string;
  /** Sightings: layers whose tree has this path as a leaf. */
  count: number;
  /** Σ of the sightings' sizes (dive's CumulativeSize). */
  cumulativeSize: number;
  /** Layer indexes of the sightings, in order. */
  layers: number[];
}

export interface DiveResult {
  efficiency: number;
  wastedBytes: number;
  /** Σ of every layer's size except the first (dive's UserSizeByes). */
  userSize: number;
  /** wastedBytes / userSize (0 when userSize is 0; dive prints NaN then). */
  wastedUserPercent: number;
  /** Per layer: Σ of its tar header sizes (dive's layer size). */
  layerSizes: number[];
  /** Paths sighted in two or more layers, largest cumulative size first. */
  inefficiencies: Inefficiency[];
}

export function diveEfficiency(layers: readonly (readonly LayerEntry[])[]): DiveResult {
  const built = layers.map(treeOf);
  const trees = built.map((b) => b.tree);
  const data = new Map<string, { cumulative: number; min: number; layers: number[] }>();
  // stacked = dive's StackTreeRange(trees, 0, idx-1): a copy of the first tree with trees 0..idx-1 stacked on it.
  let stacked: DTree | undefined;
  trees.forEach((tree, idx) => {
    if (idx === 0) stacked = tree.copy();
    else stacked!.stack(trees[idx - 1]!);
    for (const node of tree.root.childFirst()) {
      if (node.children.size > 0) continue;
      const path = node.path();
      let d = data.get(path);
      if (!d) data.set(path, (d = { cumulative: 0, min: -1, layers: [] }));
      let size = 0;
      if (node.isWhiteout) {
        const below = stacked!.get(path);
        // dive stops visiting this layer when a whiteout names nothing below (an error it
        // only logs), leaving the path counted with a minimum of -1; so do we.
        if (!below) break;
        if (below.info.isDir) for (const n of below.childFirst()) size += n.info.size;
      } else {
        size = node.info.size;
      }
      d.cumulative += size;
      if (d.min < 0 || size < d.min) d.min = size;
      d.layers.push(idx);
    }
  });
  let minimum = 0;
  let discovered = 0;
  let wasted = 0;
  const inefficiencies: Inefficiency[] = [];
  for (const [path, d] of data) {
    minimum += d.min;
    discovered += d.cumulative;
    if (d.layers.length >= 2) {
      wasted += d.cumulative;
      inefficiencies.push({ path, count: d.layers.length, cumulativeSize: d.cumulative, layers: d.layers });
    }
  }
  inefficiencies.sort((a, b) => b.cumulativeSize - a.cumulativeSize || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const layerSizes = built.map((b) => b.size);
  const userSize = layerSizes.slice(1).reduce((a, b) => a + b, 0);
  return {
    efficiency: discovered === 0 ? 1 : minimum / discovered,
    wastedBytes: wasted,
    userSize,
    wastedUserPercent: userSize === 0 ? 0 : wasted / userSize,
    layerSizes,
    inefficiencies,
  };
}
