/** A stored layer's tar, rebuilt byte for byte from its tar-split and diff dir (what docker save sends). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { assembleTar, dirFileContent, readTarSplit, SEGMENT_TYPE } from '../layer/tar-split.js';
import type { LayerRecord } from './layerdb.js';
import type { ImageStore } from './store.js';

export interface LayerTar {
  size: number;
  open(): Readable;
}

export async function layerTar(store: ImageStore, layer: LayerRecord): Promise<LayerTar> {
  const entries = readTarSplit(await readFile(store.layers.tarSplitPath(layer.chainId)));
  const size = entries.reduce((n, e) => n + (e.type === SEGMENT_TYPE ? e.payload.length : e.size), 0);
  const diffDir = join(store.overlay.dirOf(layer.cacheId), 'diff');
  return { size, open: () => assembleTar(entries, dirFileContent(diffDir)) };
}
