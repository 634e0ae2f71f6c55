import { join } from 'node:path';
import type { Command } from 'commander';
import { asChainId, isDigest, type ChainId } from '../../image/digest.js';
import type { StoredImage } from '../../store/imagedb.js';
import { ImageStore, NoSuchImageError } from '../../store/store.js';
import { defaultRoot } from '../root.js';

/** `docker image inspect`'s document for an image in the store. */
export async function inspectImage(store: ImageStore, image: StoredImage): Promise<Record<string, unknown>> {
  const c = image.config;
  const layers = await store.layerChain(image);
  const top = layers[layers.length - 1];
  const size = layers.reduce((n, l) => n + l.size, 0);
  const graph: Record<string, string> = {};
  if (top) {
    const dir = store.overlay.dirOf(top.cacheId);
    const lowers = (await store.overlay.lowersOf(top.cacheId)).map((l) => join(store.layout.overlayDir, l.replace(/^l\//, '')));
    if (layers.length > 1) graph['LowerDir'] = (await Promise.all(layers.slice(0, -1).reverse().map((l) => join(store.overlay.dirOf(l.cacheId), 'diff')))).join(':');
    void lowers;
    graph['MergedDir'] = join(dir, 'merged');
    graph['UpperDir'] = join(dir, 'diff');
    graph['WorkDir'] = join(dir, 'work');
  }
  const refs = await store.referencesOf(image.id);
  return {
    Id: image.id,
    RepoTags: refs.filter((r) => !r.includes('@')),
    RepoDigests: refs.filter((r) => r.includes('@')),
    Parent: image.parent ?? '',
    Comment: c.comment ?? '',
    Created: c.created,
    Container: c.container ?? '',
    ContainerConfig: c.container_config,
    DockerVersion: c.docker_version ?? '',
    Author: c.author ?? '',
    Config: c.config,
    Architecture: c.architecture,
    ...(c.variant ? { Variant: c.variant } : {}),
    Os: c.os,
    Size: size,
    VirtualSize: size,
    GraphDriver: { Data: graph, Name: 'overlay2' },
    RootFS: { Type: c.rootfs.type, Layers: c.rootfs.diff_ids },
    Metadata: { LastTagTime: image.lastUpdated ?? '0001-01-01T00:00:00Z' },
  };
}

/** A layer by chainID (or a diffID of a base layer): its layerdb record and directory. */
export async function inspectLayer(store: ImageStore, id: ChainId): Promise<Record<string, unknown> | undefined> {
  const layer = await store.layers.get(id);
  if (!layer) return undefined;
  return {
    ChainID: layer.chainId,
    DiffID: layer.diffId,
    Parent: layer.parent ?? '',
    CacheID: layer.cacheId,
    Size: layer.size,
    Dir: join(store.overlay.dirOf(layer.cacheId), 'diff'),
    Lower: await store.overlay.lowersOf(layer.cacheId),
  };
}

export function register(cli: Command): void {
  cli
    .command('inspect <names...>')
    .description('show images (or layers, by chainID) as JSON, like docker inspect')
    .option('--root <dir>', 'store root', defaultRoot())
    .action(async (names: string[], opts: { root: string }) => {
      const store = await ImageStore.open(opts.root);
      const out: Record<string, unknown>[] = [];
      for (const name of names) {
        const image = await store.resolve(name);
        if (image) {
          out.push(await inspectImage(store, image));
          continue;
        }
        const digest = /^[0-9a-f]{64}$/.test(name) ? `sha256:${name}` : name;
        const layer = isDigest(digest) ? await inspectLayer(store, asChainId(digest)) : undefined;
        if (!layer) throw new NoSuchImageError(name);
        out.push(layer);
      }
      process.stdout.write(JSON.stringify(out, null, 4) + '\n');
    });
}
