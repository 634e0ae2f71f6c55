/**
 * `tsbuild save`: images as a docker-save tar that `docker load` accepts — the
 * 20.10 legacy layout (`<v1id>/layer.tar`, `<id>.json`, manifest.json,
 * repositories) or, with format 'oci', an OCI image layout with Docker's
 * manifest.json alongside (moby ≥ 25 style), both loadable by dockerd 20.10.
 */
import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { TsbuildError } from '../errors.js';
import { chainIds, hexOf, sha256Digest, type ChainId, type ImageId } from '../image/digest.js';
import { containerConfigJson, type ImageConfig } from '../image/image.js';
import { goJson, type GoJson } from '../image/gojson.js';
import { familiarName, familiarString, parseReference, withDefaultTag } from '../image/reference.js';
import { ArchiveWriter } from './archive.js';
import type { StoredImage } from './imagedb.js';
import { layerTar } from './layer-stream.js';
import type { ImageStore } from './store.js';

interface SaveItem {
  image: StoredImage;
  refs: string[];
}

/** Names as `docker save` takes them: a bare repository name brings all its tags. */
async function collect(store: ImageStore, names: string[]): Promise<SaveItem[]> {
  const items = new Map<ImageId, SaveItem>();
  const add = (image: StoredImage, ref?: string) => {
    const item = items.get(image.id) ?? { image, refs: [] };
    if (ref !== undefined && !item.refs.includes(ref)) item.refs.push(ref);
    items.set(image.id, item);
  };
  for (const name of names) {
    let ref;
    try {
      ref = parseReference(name);
    } catch {
      ref = undefined;
    }
    if (ref && ref.tag === undefined && ref.digest === undefined) {
      const all = (await store.list()).flatMap((s) => s.refs.filter((r) => familiarName(parseReference(r)) === familiarName(ref)).map((r) => ({ image: s.image, r })));
      if (all.length > 0) {
        for (const { image, r } of all) add(image, r);
        continue;
      }
    }
    const image = await store.require(name);
    const byName = ref !== undefined && (await store.referencesOf(image.id)).includes(familiarString(withDefaultTag(ref)));
    add(image, byName && ref ? familiarString(withDefaultTag(ref)) : undefined);
  }
  return [...items.values()];
}

const epoch = (created: string) => Math.floor((Date.parse(created) || 0) / 1000);

/** The legacy v1 fields of an image (moby image.V1Image), in struct order. */
function v1Fields(c: ImageConfig | undefined, extra: { id?: string; parent?: string; os?: string }): Record<string, GoJson | undefined> {
  return {
    id: extra.id,
    parent: extra.parent,
    comment: c?.comment || undefined,
    created: c ? c.created : '1970-01-01T00:00:00Z',
    container: c?.container || undefined,
    container_config: containerConfigJson(c?.container_config ?? emptyConfig()),
    docker_version: c?.docker_version || undefined,
    author: c?.author || undefined,
    config: c?.config ? containerConfigJson(c.config) : undefined,
    architecture: c?.architecture || undefined,
    variant: c?.variant || undefined,
    os: extra.os ?? (c?.os || undefined),
  };
}

function emptyConfig(): ImageConfig['config'] {
  return { Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null };
}

/** moby's v1.CreateID: sha256 of the v1 JSON (sorted keys) plus layer_id and parent. */
export function v1Id(c: ImageConfig | undefined, chainId: ChainId, parent: string | undefined): string {
  const fields = v1Fields(c, {});
  const doc: Record<string, GoJson> = {};
  for (const [k, v] of Object.entries({ ...fields, layer_id: chainId, ...(parent ? { parent: `sha256:${parent}` } : {}) }).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (v !== undefined) doc[k] = v;
  }
  return createHash('sha256').update(goJson(doc)).digest('hex');
}

export async function saveImages(store: ImageStore, names: string[], out: Writable, format: 'docker' | 'oci' = 'docker'): Promise<void> {
  const items = await collect(store, names);
  if (items.length === 0) throw new TsbuildError('USAGE', 'no images to save');
  return format === 'oci' ? saveOci(store, items, out) : saveLegacy(store, items, out);
}

async function saveLegacy(store: ImageStore, items: SaveItem[], out: Writable): Promise<void> {
  interface Entry { name: string; write(a: ArchiveWriter): Promise<void> }
  const entries: Entry[] = [];
  const manifest: GoJson[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const savedLayerPaths = new Map<string, string>();
  for (const { image, refs } of items) {
    const c = image.config;
    if (c.rootfs.diff_ids.length === 0) throw new TsbuildError('USAGE', `cannot save ${image.id}: empty export - not implemented`);
    const created = epoch(c.created);
    const layers = await store.layerChain(image);
    const chains = chainIds(c.rootfs.diff_ids);
    const v1ids: string[] = [];
    let parent: string | undefined;
    for (let i = 0; i < layers.length; i++) {
      const top = i === layers.length - 1;
      const id = v1Id(top ? c : undefined, chains[i]!, parent);
      v1ids.push(id);
      if (!entries.some((e) => e.name === `${id}/`)) {
        const json = Buffer.from(goJson(v1Fields(top ? c : undefined, { id, ...(parent ? { parent } : {}), os: c.os }) as GoJson));
        const layer = layers[i]!;
        const previous = savedLayerPaths.get(layer.diffId);
        entries.push({ name: `${id}/`, write: (a) => a.dir(id, created) });
        entries.push({ name: `${id}/VERSION`, write: (a) => a.file(`${id}/VERSION`, Buffer.from('1.0'), 3, created) });
        entries.push({ name: `${id}/json`, write: (a) => a.file(`${id}/json`, json, json.length, created) });
        if (previous) {
          entries.push({ name: `${id}/layer.tar`, write: (a) => a.symlink(`${id}/layer.tar`, `../${previous}`, created) });
        } else {
          savedLayerPaths.set(layer.diffId, `${id}/layer.tar`);
          const tar = await layerTar(store, layer);
          entries.push({ name: `${id}/layer.tar`, write: (a) => a.file(`${id}/layer.tar`, tar.open(), tar.size, created) });
        }
      }
      parent = id;
    }
    const configName = `${hexOf(image.id)}.json`;
    entries.push({ name: configName, write: (a) => a.file(configName, image.bytes, image.bytes.length, created) });
    for (const r of refs) {
      const ref = parseReference(r);
      const name = familiarName(ref);
      repositories[name] = { ...(repositories[name] ?? {}), [ref.tag ?? 'latest']: v1ids[v1ids.length - 1]! };
    }
    manifest.push({ Config: configName, RepoTags: refs.length > 0 ? refs : null, Layers: v1ids.map((id) => `${id}/layer.tar`) });
  }
  const now = Math.floor(Date.now() / 1000);
  const manifestBytes = Buffer.from(goJson(manifest) + '\n');
  entries.push({ name: 'manifest.json', write: (a) => a.file('manifest.json', manifestBytes, manifestBytes.length, now) });
  if (Object.keys(repositories).length > 0) {
    const reposBytes = Buffer.from(goJson(repositories) + '\n');
    entries.push({ name: 'repositories', write: (a) => a.file('repositories', reposBytes, reposBytes.length, now) });
  }
  // Docker tars its temp dir: a pre-order walk with names sorted bytewise.
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  const archive = new ArchiveWriter(out);
  for (const e of entries) await e.write(archive);
  await archive.finish();
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

async function saveOci(store: ImageStore, items: SaveItem[], out: Writable): Promise<void> {
  const blobs = new Map<string, { size: number; write(a: ArchiveWriter, name: string): Promise<void> }>();
  const addBlob = (bytes: Buffer): { digest: string; size: number } => {
    const digest = sha256Digest(bytes);
    blobs.set(digest, { size: bytes.length, write: (a, name) => a.file(name, bytes, bytes.length, 0) });
    return { digest, size: bytes.length };
  };
  const indexManifests: GoJson[] = [];
  const dockerManifest: GoJson[] = [];
  for (const { image, refs } of items) {
    const layerDescs: GoJson[] = [];
    for (const layer of await store.layerChain(image)) {
      const tar = await layerTar(store, layer);
      blobs.set(layer.diffId, { size: tar.size, write: (a, name) => a.file(name, tar.open(), tar.size, 0) });
      layerDescs.push({ mediaType: OCI_LAYER, digest: layer.diffId, size: tar.size });
    }
    const config = addBlob(image.bytes);
    const manifest = addBlob(Buffer.from(goJson({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size }, layers: layerDescs })));
    const names = refs.length > 0 ? refs : [undefined];
    for (const r of names) {
      const ref = r ? withDefaultTag(parseReference(r)) : undefined;
      indexManifests.push({
        mediaType: OCI_MANIFEST,
        digest: manifest.digest,
        size: manifest.size,
        ...(ref ? { annotations: { 'io.containerd.image.name': `${ref.domain}/${ref.path}:${ref.tag}`, 'org.opencontainers.image.ref.name': ref.tag ?? 'latest' } } : {}),
      });
    }
    dockerManifest.push({ Config: `blobs/sha256/${hexOf(config.digest as ImageId)}`, RepoTags: refs.length > 0 ? refs : null, Layers: image.config.rootfs.diff_ids.map((d) => `blobs/sha256/${hexOf(d)}`) });
  }
  const index = Buffer.from(goJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: indexManifests }) + '\n');
  const layout = Buffer.from('{"imageLayoutVersion":"1.0.0"}');
  const manifestJson = Buffer.from(goJson(dockerManifest) + '\n');
  const archive = new ArchiveWriter(out);
  await archive.dir('blobs', 0);
  await archive.dir('blobs/sha256', 0);
  for (const [digest, blob] of [...blobs].sort(([a], [b]) => (a < b ? -1 : 1))) await blob.write(archive, `blobs/sha256/${digest.slice(7)}`);
  await archive.file('index.json', index, index.length, 0);
  await archive.file('manifest.json', manifestJson, manifestJson.length, 0);
  await archive.file('oci-layout', layout, layout.length, 0);
  await archive.finish();
}
