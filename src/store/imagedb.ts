/** `image/overlay2/imagedb`: config blobs by ID, plus parent and lastUpdated metadata. */
import { readFileSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { asImageId, hexOf, sha256Digest, type ImageId } from '../image/digest.js';
import type { ImageConfig } from '../image/image.js';
import { TsbuildError } from '../errors.js';
import type { Layout } from './layout.js';
import { isAtomicTemp, mkdirMode, writeFileAtomic } from './fsutil.js';
import { readOptional } from './fsutil.js';

export interface StoredImage {
  id: ImageId;
  bytes: Buffer;
  config: ImageConfig;
  parent: ImageId | null;
  lastUpdated?: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export class ImageDb {
  constructor(private readonly layout: Layout) {}

  private metaDir(id: ImageId): string {
    return join(this.layout.metadataDir, hexOf(id));
  }

  async put(bytes: Buffer): Promise<ImageId> {
    const id = asImageId(sha256Digest(bytes));
    await writeFileAtomic(join(this.layout.contentDir, hexOf(id)), bytes, 0o600);
    return id;
  }

  async setParent(id: ImageId, parent: ImageId): Promise<void> {
    await mkdirMode(this.metaDir(id), 0o700);
    await writeFileAtomic(join(this.metaDir(id), 'parent'), parent, 0o600);
  }

  async setLastUpdated(id: ImageId, time: string): Promise<void> {
    await mkdirMode(this.metaDir(id), 0o700);
    await writeFileAtomic(join(this.metaDir(id), 'lastUpdated'), time, 0o600);
  }

  /** An image as dockerd reads it: the bytes must hash to the ID and hold a rootfs. */
  async get(id: ImageId): Promise<StoredImage | undefined> {
    let bytes: Buffer;
    try {
      // Synchronous, like readOptional: a config is a few KiB, and a build reads every one.
      bytes = readFileSync(join(this.layout.contentDir, hexOf(id)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    if (sha256Digest(bytes) !== id) return undefined;
    let config: ImageConfig;
    try {
      config = JSON.parse(bytes.toString('utf8')) as ImageConfig;
    } catch {
      return undefined;
    }
    if (!config.rootfs || !Array.isArray(config.rootfs.diff_ids)) return undefined;
    const parent = await readOptional(join(this.metaDir(id), 'parent'));
    const lastUpdated = await readOptional(join(this.metaDir(id), 'lastUpdated'));
    const image: StoredImage = { id, bytes, config, parent: parent ? asImageId(parent.trim()) : null };
    if (lastUpdated !== undefined) image.lastUpdated = lastUpdated;
    return image;
  }

  async require(id: ImageId): Promise<StoredImage> {
    const image = await this.get(id);
    if (!image) throw new TsbuildError('NO_IMAGE', `No such image: ${id}`);
    return image;
  }

  async ids(): Promise<ImageId[]> {
    return (await readdir(this.layout.contentDir)).filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => asImageId(`sha256:${n}`));
  }

  async remove(id: ImageId): Promise<void> {
    await rm(join(this.layout.contentDir, hexOf(id)), { force: true });
    await rm(this.metaDir(id), { recursive: true, force: true });
  }

  /**
   * Crash leftovers: atomic-write temps (content, metadata, repositories.json) and
   * metadata dirs whose config is gone (remove() deletes the config first; putImage
   * writes the metadata first).
   */
  async sweepTmp(): Promise<void> {
    for (const name of await readdir(this.layout.contentDir)) if (isAtomicTemp(name)) await rm(join(this.layout.contentDir, name), { force: true });
    for (const name of await readdir(this.layout.imageRoot)) if (isAtomicTemp(name)) await rm(join(this.layout.imageRoot, name), { force: true });
    for (const name of await readdir(this.layout.metadataDir)) {
      const dir = join(this.layout.metadataDir, name);
      if (!/^[0-9a-f]{64}$/.test(name) || !(await exists(join(this.layout.contentDir, name)))) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      for (const f of await readdir(dir).catch(() => [] as string[])) if (isAtomicTemp(f)) await rm(join(dir, f), { force: true });
    }
  }
}
