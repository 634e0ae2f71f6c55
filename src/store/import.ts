/** `tsbuild import`: a root filesystem tar as a one-layer image, as `docker import` makes it. */
import type { Readable } from 'node:stream';
import { emptyContainerConfig } from '../image/config.js';
import type { ImageId } from '../image/digest.js';
import { rfc3339Nano, serializeImageConfig, type ImageConfig } from '../image/image.js';
import { applyLayer } from '../layer/reader.js';
import type { Platform } from '../plan/types.js';
import { TSBUILD_VERSION } from '../version.js';
import { decompressed } from './archive.js';
import type { ImageStore } from './store.js';

export interface ImportOptions {
  reference?: string;
  message?: string;
  platform: Platform;
  now?: Date;
}

export async function importRootfs(store: ImageStore, input: Readable, opts: ImportOptions): Promise<ImageId> {
  const layer = await store.putLayer(null, async (diffDir) => {
    const r = await applyLayer(await decompressed(input), diffDir);
    return { diffId: r.diffId, tarSplit: r.tarSplit, size: r.size };
  });
  const created = rfc3339Nano(opts.now ?? new Date());
  const comment = opts.message || 'Imported from -';
  const config: ImageConfig = {
    architecture: opts.platform.architecture,
    comment,
    config: emptyContainerConfig(),
    container_config: emptyContainerConfig(),
    created,
    docker_version: TSBUILD_VERSION,
    history: [{ created, comment }],
    os: opts.platform.os,
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
  };
  if (opts.platform.variant) config.variant = opts.platform.variant;
  const id = await store.putImage(serializeImageConfig(config));
  if (opts.reference) await store.tag(opts.reference, id);
  return id;
}
