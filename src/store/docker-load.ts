/**
 * `tsbuild load`: docker-save tars (20.10 legacy layout, moby ≥ 25 OCI-in-tar,
 * or a plain OCI image layout tar; layers plain or gzip'd) into the store.
 * A bad archive or a layer whose digest does not match leaves nothing behind.
 */
import { createReadStream, existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import type { Readable } from 'node:stream';
import { TsbuildError } from '../errors.js';
import { asDiffId, chainIdOf, isDigest, type ChainId, type DiffId, type ImageId } from '../image/digest.js';
import type { ImageConfig } from '../image/image.js';
import { familiarString, parseReference, withDefaultTag } from '../image/reference.js';
import { applyLayer } from '../layer/reader.js';
import { ArchiveError, decompressed, extractArchive } from './archive.js';
import type { ImageStore } from './store.js';

interface ManifestItem {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export interface LoadedImage {
  id: ImageId;
  refs: string[];
}

function inside(dir: string, name: string, what: string): string {
  const clean = normalize(name);
  if (name.startsWith('/') || clean.startsWith('..')) throw new ArchiveError(`${what} ${JSON.stringify(name)} points outside the archive`);
  const path = join(dir, clean);
  if (!existsSync(path)) throw new ArchiveError(`${what} ${JSON.stringify(name)} is missing from the archive`);
  return path;
}

async function readJson<T>(path: string, what: string): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (e) {
    throw new ArchiveError(`${what} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

/** Docker's manifest.json, or one built from an OCI index. */
async function manifestOf(dir: string): Promise<ManifestItem[]> {
  if (existsSync(join(dir, 'manifest.json'))) {
    const items = await readJson<ManifestItem[]>(join(dir, 'manifest.json'), 'manifest.json');
    if (!Array.isArray(items)) throw new ArchiveError('manifest.json is not a list');
    return items;
  }
  if (!existsSync(join(dir, 'index.json'))) throw new ArchiveError('not a docker-save or OCI archive: no manifest.json or index.json');
  const blob = (digest: string) => {
    if (!isDigest(digest)) throw new ArchiveError(`bad digest ${JSON.stringify(digest)} in index`);
    return `blobs/sha256/${digest.slice(7)}`;
  };
  const items: ManifestItem[] = [];
  const walk = async (descs: { mediaType?: string; digest: string; annotations?: Record<string, string> }[]) => {
    for (const d of descs) {
      const doc = await readJson<{ mediaType?: string; manifests?: typeof descs; config?: { digest: string }; layers?: { digest: string }[] }>(inside(dir, blob(d.digest), 'blob'), `blob ${d.digest}`);
      if (doc.manifests) {
        await walk(doc.manifests);
        continue;
      }
      if (!doc.config || !doc.layers) throw new ArchiveError(`blob ${d.digest} is not an image manifest`);
      const name = d.annotations?.['io.containerd.image.name'];
      items.push({ Config: blob(doc.config.digest), RepoTags: name ? [name] : null, Layers: doc.layers.map((l) => blob(l.digest)) });
    }
  };
  const index = await readJson<{ manifests?: { digest: string }[] }>(join(dir, 'index.json'), 'index.json');
  await walk(index.manifests ?? []);
  return items;
}

export async function loadImages(store: ImageStore, input: Readable, onLine: (line: string) => void = () => undefined): Promise<LoadedImage[]> {
  // Named after this process: swept if we are killed.
  const dir = await store.processScratchDir();
  const created: ChainId[] = [];
  try {
    await extractArchive(await decompressed(input), dir);
    const loaded: LoadedImage[] = [];
    for (const item of await manifestOf(dir)) {
      const configPath = inside(dir, item.Config, 'config');
      const bytes = await readFile(configPath);
      let config: ImageConfig;
      try {
        config = JSON.parse(bytes.toString('utf8')) as ImageConfig;
      } catch (e) {
        throw new ArchiveError(`${item.Config} is not valid JSON`, { cause: e });
      }
      const diffIds: DiffId[] = (config.rootfs?.diff_ids ?? []).map((d) => asDiffId(d));
      if (!Array.isArray(item.Layers) || item.Layers.length !== diffIds.length) {
        throw new ArchiveError(`invalid manifest, layers length mismatch: expected ${diffIds.length}, got ${item.Layers?.length ?? 0}`);
      }
      let parent: ChainId | null = null;
      for (let i = 0; i < diffIds.length; i++) {
        const chainId = chainIdOf(parent, diffIds[i]!);
        if (!(await store.layers.has(chainId))) {
          const path = inside(dir, item.Layers[i]!, 'layer');
          onLine(`Loading layer ${diffIds[i]!.slice(7, 19)}`);
          const record = await store.putLayer(parent, async (diffDir) => {
            const result = await applyLayer(await decompressed(createReadStream(path)), diffDir, { expectDiffId: diffIds[i]! });
            return { diffId: result.diffId, tarSplit: result.tarSplit, size: result.size };
          });
          created.push(record.chainId);
        }
        parent = chainId;
      }
      const id = await store.putImage(bytes);
      const refs: string[] = [];
      for (const tag of item.RepoTags ?? []) {
        const ref = await store.tag(tag, id);
        refs.push(familiarString(withDefaultTag(ref)));
        onLine(`Loaded image: ${familiarString(withDefaultTag(parseReference(tag)))}`);
      }
      if (refs.length === 0) onLine(`Loaded image ID: ${id}`);
      loaded.push({ id, refs });
    }
    return loaded;
  } catch (e) {
    await store.dropLayersNotInUse(created);
    if (e instanceof TsbuildError) throw e;
    throw new ArchiveError(`cannot load: ${(e as Error).message}`, { cause: e });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

