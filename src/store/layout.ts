/** Paths and modes of a Docker 20.10 overlay2 data root (STORE-FORMAT.md §1). */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { mkdirMode } from './fsutil.js';

export class Layout {
  // Computed once: the store asks for these paths thousands of times per build.
  readonly imageRoot: string;
  readonly contentDir: string;
  readonly metadataDir: string;
  readonly layersDir: string;
  readonly layerTmpDir: string;
  readonly mountsDir: string;
  readonly repositoriesJson: string;
  readonly overlayDir: string;
  readonly linksDir: string;
  /** Our lock and scratch space; dockerd ignores what it does not know. */
  readonly lockFile: string;

  constructor(readonly root: string) {
    this.imageRoot = join(root, 'image', 'overlay2');
    this.contentDir = join(this.imageRoot, 'imagedb', 'content', 'sha256');
    this.metadataDir = join(this.imageRoot, 'imagedb', 'metadata', 'sha256');
    this.layersDir = join(this.imageRoot, 'layerdb', 'sha256');
    this.layerTmpDir = join(this.imageRoot, 'layerdb', 'tmp');
    this.mountsDir = join(this.imageRoot, 'layerdb', 'mounts');
    this.repositoriesJson = join(this.imageRoot, 'repositories.json');
    this.overlayDir = join(root, 'overlay2');
    this.linksDir = join(this.overlayDir, 'l');
    this.lockFile = join(root, 'tsbuild.lock');
  }

  /** Every directory of the root with dockerd's mode, parents first. */
  private dirs(): Array<[string, number]> {
    const image = join(this.root, 'image');
    return [
      [this.root, 0o710],
      ...[image, this.imageRoot, join(this.imageRoot, 'imagedb'), join(this.imageRoot, 'imagedb', 'content'), this.contentDir, join(this.imageRoot, 'imagedb', 'metadata'), this.metadataDir, join(this.imageRoot, 'layerdb')].map((d): [string, number] => [d, 0o700]),
      ...[this.layersDir, this.layerTmpDir, this.mountsDir].map((d): [string, number] => [d, 0o755]),
      [this.overlayDir, 0o710],
      [this.linksDir, 0o700],
    ];
  }

  /** Creates every directory with dockerd's modes (and mends a wrong one); idempotent. */
  async ensure(): Promise<void> {
    for (const [dir, mode] of this.dirs()) {
      // A stat each (synchronous: microseconds) instead of mkdir + chmod round trips on every open.
      const st = statSync(dir, { throwIfNoEntry: false });
      if (st?.isDirectory() && (st.mode & 0o7777) === mode) continue;
      await mkdirMode(dir, mode);
    }
  }
}
