/** `image/overlay2/layerdb/sha256/<chainID>/`: one directory per registered layer. */
import { readdir, readFile, rename, rm, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { asChainId, asDiffId, hexOf, type ChainId, type DiffId } from '../image/digest.js';
import type { Layout } from './layout.js';
import { mkdirMode, randomHex } from './fsutil.js';
import { readOptional } from './fsutil.js';

export interface LayerRecord {
  chainId: ChainId;
  diffId: DiffId;
  parent: ChainId | null;
  cacheId: string;
  /** STORE-FORMAT §1 size of the layer's own files. */
  size: number;
}

export class LayerDb {
  constructor(private readonly layout: Layout) {}

  dirOf(chainId: ChainId): string {
    return join(this.layout.layersDir, hexOf(chainId));
  }

  tarSplitPath(chainId: ChainId): string {
    return join(this.dirOf(chainId), 'tar-split.json.gz');
  }

  /** A layer as dockerd would load it; undefined when absent or unreadable (dockerd drops those too). */
  async get(chainId: ChainId): Promise<LayerRecord | undefined> {
    const dir = this.dirOf(chainId);
    const [diff, size, cacheId, parent] = await Promise.all(['diff', 'size', 'cache-id', 'parent'].map((f) => readOptional(join(dir, f))));
    if (diff === undefined || size === undefined || cacheId === undefined || !/^\d+$/.test(size)) return undefined;
    return {
      chainId,
      diffId: asDiffId(diff),
      parent: parent === undefined ? null : asChainId(parent),
      cacheId,
      size: Number(size),
    };
  }

  /**
   * get() remembered for this LayerDb's life: a layer's record never changes while it exists, and
   * remove() forgets it. For walks that see the same layers again and again (the cache lookup of
   * every step checks its whole chain); fsck and friends read the disk with get().
   */
  async known(chainId: ChainId): Promise<LayerRecord | undefined> {
    const hit = this.seen.get(chainId);
    if (hit !== undefined) return hit;
    const layer = await this.get(chainId);
    if (layer !== undefined) this.seen.set(chainId, layer);
    return layer;
  }

  private readonly seen = new Map<ChainId, LayerRecord>();

  async has(chainId: ChainId): Promise<boolean> {
    return (await this.get(chainId)) !== undefined;
  }

  async list(): Promise<LayerRecord[]> {
    const out: LayerRecord[] = [];
    for (const hex of await readdir(this.layout.layersDir)) {
      if (!/^[0-9a-f]{64}$/.test(hex)) continue;
      const layer = await this.get(asChainId(`sha256:${hex}`));
      if (layer) out.push(layer);
    }
    return out;
  }

  /** Writes the layer's files under layerdb/tmp and renames the directory into place. */
  async put(record: LayerRecord, tarSplit: Buffer): Promise<void> {
    const tmp = join(this.layout.layerTmpDir, `write-set-${randomHex(8)}`);
    await mkdirMode(tmp, 0o700);
    try {
      const files: [string, string | Buffer][] = [
        ['diff', record.diffId],
        ['size', String(record.size)],
        ['cache-id', record.cacheId],
        ['tar-split.json.gz', tarSplit],
      ];
      if (record.parent !== null) files.push(['parent', record.parent]);
      for (const [name, data] of files) {
        await writeFile(join(tmp, name), data, { mode: 0o644 });
        await chmod(join(tmp, name), 0o644);
      }
      await rename(tmp, this.dirOf(record.chainId));
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /** Moves the dir into layerdb/tmp first (atomic), so a crash never leaves a half-removed layer behind. */
  async remove(chainId: ChainId): Promise<void> {
    this.seen.delete(chainId);
    const trash = join(this.layout.layerTmpDir, `remove-${randomHex(8)}`);
    try {
      await rename(this.dirOf(chainId), trash);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    await rm(trash, { recursive: true, force: true });
  }

  /** Half-written layers from a crash: dockerd never reads layerdb/tmp. */
  async sweepTmp(): Promise<void> {
    for (const name of await readdir(this.layout.layerTmpDir)) await rm(join(this.layout.layerTmpDir, name), { recursive: true, force: true });
  }

  /** Container RW layers dockerd keeps under mounts/: their cache-ids (and -init) are in use. */
  async mountCacheIds(): Promise<Set<string>> {
    const used = new Set<string>();
    for (const id of await readdir(this.layout.mountsDir).catch(() => [] as string[])) {
      for (const f of ['mount-id', 'init-id']) {
        const v = await readOptional(join(this.layout.mountsDir, id, f));
        if (v) used.add(v.trim());
      }
    }
    return used;
  }
}
