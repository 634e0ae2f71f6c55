/** Paths and modes of a Docker 20.10 overlay2 data root (STORE-FORMAT.md §1). */
import { join } from 'node:path';
import { mkdirMode } from './fsutil.js';

export class Layout {
  constructor(readonly root: string) {}
  get imageRoot(): string {
    return join(this.root, 'image', 'overlay2');
  }
  get contentDir(): string {
    return join(this.imageRoot, 'imagedb', 'content', 'sha256');
  }
  get metadataDir(): string {
    return join(this.imageRoot, 'imagedb', 'metadata', 'sha256');
  }
  get layersDir(): string {
    return join(this.imageRoot, 'layerdb', 'sha256');
  }
  get layerTmpDir(): string {
    return join(this.imageRoot, 'layerdb', 'tmp');
  }
  get mountsDir(): string {
    return join(this.imageRoot, 'layerdb', 'mounts');
  }
  get repositoriesJson(): string {
    return join(this.imageRoot, 'repositories.json');
  }
  get overlayDir(): string {
    return join(this.root, 'overlay2');
  }
  get linksDir(): string {
    return join(this.overlayDir, 'l');
  }
  /** Our lock and scratch space; dockerd ignores what it does not know. */
  get lockFile(): string {
    return join(this.root, 'tsbuild.lock');
  }

  /** Creates every directory with dockerd's modes; idempotent. */
  async ensure(): Promise<void> {
    await mkdirMode(this.root, 0o710);
    for (const d of [join(this.root, 'image'), this.imageRoot, join(this.imageRoot, 'imagedb'), join(this.imageRoot, 'imagedb', 'content'), this.contentDir, join(this.imageRoot, 'imagedb', 'metadata'), this.metadataDir, join(this.imageRoot, 'layerdb')]) {
      await mkdirMode(d, 0o700);
    }
    for (const d of [this.layersDir, this.layerTmpDir, this.mountsDir]) await mkdirMode(d, 0o755);
    await mkdirMode(this.overlayDir, 0o710);
    await mkdirMode(this.linksDir, 0o700);
  }
}
