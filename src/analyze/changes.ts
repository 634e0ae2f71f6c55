/**
 * What each layer does to the filesystem the layers below it make, with
 * overlay's rules (a whiteout hides a path and everything under it, an opaque
 * dir hides the lower dir's children, a non-dir replaces a dir with its
 * subtree): files added, modified and deleted per layer, the bytes of each
 * layer that later layers hide (dead bytes: they ship but nobody sees them),
 * who hides them, and copy-ups (a later layer holding the same content again
 * with only its mode or owner changed: `chmod`/`chown`).
 */
import type { LayerEntry } from './entries.js';

export interface LayerChanges {
  /** Entries whose path was not visible below. */
  added: number;
  /** Non-directory entries replacing a visible path, and directories whose mode or owner changed. */
  modified: number;
  /** Visible paths (with everything under them) this layer hides: whiteouts, opaque dirs, replaced dirs. */
  deleted: number;
  /** Bytes of this layer's files that later layers hide. */
  deadBytes: number;
  /** Number of entries (files, dirs, links, whiteouts) in the layer's tar. */
  entries: number;
}

export interface HiddenPath {
  path: string;
  size: number;
  how: 'deleted' | 'overwritten';
}

/** Bytes of layer `from` hidden by layer `to`. */
export interface Hiding {
  from: number;
  to: number;
  bytes: number;
  paths: HiddenPath[];
}

export interface CopyUp {
  /** The layer that had the content, and the one that holds it again. */
  from: number;
  to: number;
  path: string;
  size: number;
  /** What changed; the contents did not. */
  change: { mode?: [number, number]; owner?: [string, string] };
}

export type EntryStatus = 'added' | 'modified' | 'unchanged' | 'deleted' | 'opaque';

export interface ChangesResult {
  layers: LayerChanges[];
  /** Per layer, per entry (same order as the input): what the entry did. */
  status: EntryStatus[][];
  /** Per layer, per entry: true when a later layer hides it (its bytes are wasted). */
  hiddenLater: boolean[][];
  hidings: Hiding[];
  copyUps: CopyUp[];
  /** Σ dead bytes: what merging / removing the hiding steps could save. */
  deadBytes: number;
}

interface Visible {
  entry: LayerEntry;
  layer: number;
  index: number;
}

class VNode {
  readonly children = new Map<string, VNode>();
  visible: Visible | undefined;
  constructor(readonly parent: VNode | null, readonly name: string) {}

  *subtree(): Generator<VNode> {
    yield this;
    for (const c of this.children.values()) yield* c.subtree();
  }
}

function sameContent(a: LayerEntry, b: LayerEntry): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'file') return a.size === b.size && a.crc === b.crc;
  if (a.kind === 'symlink') return a.linkname === b.linkname;
  return false;
}

export function layerChanges(layers: readonly (readonly LayerEntry[])[]): ChangesResult {
  const root = new VNode(null, '');
  const find = (path: string, create: boolean): VNode | undefined => {
    let node = root;
    for (const name of path.split('/')) {
      if (name === '') continue;
      let next = node.children.get(name);
      if (!next) {
        if (!create) return undefined;
        next = new VNode(node, name);
        node.children.set(name, next);
      }
      node = next;
    }
    return node;
  };
  const out: LayerChanges[] = layers.map((l) => ({ added: 0, modified: 0, deleted: 0, deadBytes: 0, entries: l.length }));
  const hidings = new Map<string, Hiding>();
  const copyUps: CopyUp[] = [];
  const status: EntryStatus[][] = layers.map((l) => l.map(() => 'unchanged'));
  const hiddenLater: boolean[][] = layers.map((l) => l.map(() => false));
  // Hardlinks share their file's data: it is dead only once no path of the inode is visible.
  const files = layers.map((l) => new Map(l.flatMap((e, i) => (e.kind === 'file' ? [[e.path, i] as const] : []))));
  const links = layers.map((l) => {
    const m = new Map<string, number[]>();
    l.forEach((e, i) => {
      if (e.kind === 'hardlink') {
        const target = '/' + e.linkname.replace(/^\/+/, '');
        m.set(target, [...(m.get(target) ?? []), i]);
      }
    });
    return m;
  });
  const hide = (v: Visible, to: number, path: string, how: HiddenPath['how']): void => {
    const hidden = hiddenLater[v.layer]!;
    hidden[v.index] = true;
    let size = v.entry.kind === 'file' ? v.entry.size : 0;
    if (v.entry.kind === 'file' && (links[v.layer]!.get(v.entry.path) ?? []).some((i) => !hidden[i])) size = 0;
    if (v.entry.kind === 'hardlink') {
      const target = '/' + v.entry.linkname.replace(/^\/+/, '');
      const fi = files[v.layer]!.get(target);
      if (fi !== undefined && hidden[fi] && (links[v.layer]!.get(target) ?? []).every((i) => hidden[i])) size = layers[v.layer]![fi]!.size;
    }
    if (size === 0) return;
    out[v.layer]!.deadBytes += size;
    const key = `${v.layer}>${to}`;
    let h = hidings.get(key);
    if (!h) hidings.set(key, (h = { from: v.layer, to, bytes: 0, paths: [] }));
    h.bytes += size;
    h.paths.push({ path, size, how });
  };
  /** Hides every visible path at and under `node` (or only under it). */
  const hideSubtree = (node: VNode, to: number, path: string, includeSelf: boolean): void => {
    const prefix = path === '/' ? '' : path;
    const walk = (n: VNode, p: string, self: boolean): void => {
      if (self && n.visible) {
        out[to]!.deleted++;
        hide(n.visible, to, p || '/', 'deleted');
      }
      for (const [name, c] of n.children) walk(c, `${p}/${name}`, true);
    };
    walk(node, prefix, includeSelf);
    node.children.clear();
    if (includeSelf) node.visible = undefined;
  };

  layers.forEach((entries, j) => {
    const stats = out[j]!;
    for (const [index, e] of entries.entries()) {
      if (e.kind === 'whiteout') {
        status[j]![index] = 'deleted';
        const node = find(e.path, false);
        if (node) {
          hideSubtree(node, j, e.path, true);
          node.parent?.children.delete(node.name);
        }
        continue;
      }
      if (e.kind === 'opaque') {
        status[j]![index] = 'opaque';
        const node = find(e.path, false);
        if (node) hideSubtree(node, j, e.path, false);
        continue;
      }
      const node = find(e.path, true)!;
      const prev = node.visible;
      if (!prev) {
        stats.added++;
        status[j]![index] = 'added';
      } else if (e.kind === 'dir' && prev.entry.kind === 'dir') {
        if (prev.entry.mode !== e.mode || prev.entry.uid !== e.uid || prev.entry.gid !== e.gid) {
          stats.modified++;
          status[j]![index] = 'modified';
        }
      } else {
        stats.modified++;
        status[j]![index] = 'modified';
        if (prev.entry.kind === 'dir') {
          // A non-dir replaces a dir: everything under it goes.
          hideSubtree(node, j, e.path, false);
        } else if (sameContent(prev.entry, e) && prev.entry.size > 0 && (prev.entry.mode !== e.mode || prev.entry.uid !== e.uid || prev.entry.gid !== e.gid)) {
          const change: CopyUp['change'] = {};
          if (prev.entry.mode !== e.mode) change.mode = [prev.entry.mode, e.mode];
          if (prev.entry.uid !== e.uid || prev.entry.gid !== e.gid) change.owner = [`${prev.entry.uid}:${prev.entry.gid}`, `${e.uid}:${e.gid}`];
          copyUps.push({ from: prev.layer, to: j, path: e.path, size: prev.entry.size, change });
        }
        hide(prev, j, e.path, 'overwritten');
      }
      if (e.kind !== 'dir') node.children.clear();
      node.visible = { entry: e, layer: j, index };
    }
  });
  const list = [...hidings.values()].sort((a, b) => a.from - b.from || a.to - b.to);
  for (const h of list) h.paths.sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1));
  return { layers: out, status, hiddenLater, hidings: list, copyUps, deadBytes: out.reduce((n, l) => n + l.deadBytes, 0) };
}
