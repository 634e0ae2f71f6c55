/**
 * The shared build cache in a registry (`--cache-to type=registry,ref=R` and
 * `--cache-from type=registry,ref=R`). Our own format, stored as a plain OCI
 * artifact so any Distribution registry holds it:
 *
 *   manifest (application/vnd.oci.image.manifest.v1+json), tagged R:
 *     config: application/vnd.tsbuild.cache.config.v1+json → the cache config below
 *     layers: application/vnd.oci.image.layer.v1.tar+gzip, one per distinct step
 *             layer, deterministic gzip (the push code: HEAD first, cross-repo mount)
 *
 *   cache config (JSON):
 *     { "version": 1,
 *       "layers": [diffID, …],          // layers[i] is the uncompressed manifest.layers[i]
 *       "records": [{
 *         "id": "sha256:…",             // the step image's ID = sha256 of `config`
 *         "parent": "sha256:…" | null,  // its parent image (classic builder chain)
 *         "config": "<base64>",         // the exact image config bytes
 *         "diffId": "sha256:…"          // the layer the step adds (absent: none)
 *       }, …] }
 *
 * A lookup on another root mirrors the local cache rule (build.ts findCached): a
 * record whose parent is the current image and whose container_config matches the
 * probe is a hit. Its layer is downloaded (blob digest checked while streaming,
 * diffID while extracting: the pull code), registered on the parent's chain, and
 * the config bytes stored with the same parent — so the image ID is A's.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerConfig } from '../image/config.js';
import { chainIdOf, chainIds, isDigest, sha256Digest, type ChainId, type DiffId, type ImageId } from '../image/digest.js';
import type { ImageConfig } from '../image/image.js';
import { familiarString, fullName, parseReference, withDefaultTag, type Reference } from '../image/reference.js';
import type { StoredImage } from '../store/imagedb.js';
import type { LayerRecord } from '../store/layerdb.js';
import type { ImageStore } from '../store/store.js';
import { sameCacheConfig } from '../exec/step-image.js';
import { RegistryClient, repoScope, type ClientOptions } from './client.js';
import { RegistryError } from './errors.js';
import { MEDIA, parseManifest, type Descriptor } from './media.js';
import { addV2Metadata } from './metadata.js';
import { silentProgress, type ProgressSink } from './progress.js';
import { downloadBlob, extractLayer, fetchConfig, fetchManifest } from './pull.js';
import { pushManifestOf } from './push.js';

export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.tsbuild.cache.config.v1+json';

export interface CacheRecord {
  id: ImageId;
  parent: ImageId | null;
  /** The image config bytes. */
  config: Buffer;
  diffId?: DiffId;
}

export interface CacheConfig {
  layers: DiffId[];
  records: CacheRecord[];
}

// ---------------------------------------------------------------------------------------------
// Format (pure)

export function serializeCacheConfig(c: CacheConfig): Buffer {
  const records = c.records.map((r) => ({ id: r.id, parent: r.parent, config: r.config.toString('base64'), ...(r.diffId ? { diffId: r.diffId } : {}) }));
  return Buffer.from(JSON.stringify({ version: 1, layers: c.layers, records }));
}

function badCache(what: string): never {
  throw new RegistryError('REGISTRY_MANIFEST', `invalid build cache: ${what}`);
}

/** Parses and checks a cache config: every record's ID is its config's digest, every diffID a listed layer. */
export function parseCacheConfig(bytes: Buffer): CacheConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new RegistryError('REGISTRY_MANIFEST', 'invalid build cache: the config is not JSON', { cause: e });
  }
  const d = doc as Record<string, unknown>;
  if (typeof d !== 'object' || d === null || d['version'] !== 1) badCache(`unsupported version ${JSON.stringify((d as Record<string, unknown> | null)?.['version'])}`);
  if (!Array.isArray(d['layers']) || !Array.isArray(d['records'])) badCache('no "layers" or "records"');
  const layers = (d['layers'] as unknown[]).map((l, i) => (typeof l === 'string' && isDigest(l) ? (l as DiffId) : badCache(`layers[${i}] is not a digest`)));
  const listed = new Set<string>(layers);
  const records = (d['records'] as unknown[]).map((v, i): CacheRecord => {
    const r = v as Record<string, unknown>;
    if (typeof r !== 'object' || r === null) badCache(`records[${i}] is not an object`);
    const { id, parent, config, diffId } = r;
    if (typeof id !== 'string' || !isDigest(id)) badCache(`records[${i}] has no id`);
    if (parent !== null && (typeof parent !== 'string' || !isDigest(parent))) badCache(`records[${i}] has an invalid parent`);
    if (typeof config !== 'string') badCache(`records[${i}] has no config`);
    const bytes = Buffer.from(config, 'base64');
    if (sha256Digest(bytes) !== id) badCache(`records[${i}]: the config does not hash to ${id}`);
    let parsed: { rootfs?: { diff_ids?: unknown } } | null;
    try {
      parsed = JSON.parse(bytes.toString('utf8')) as typeof parsed;
    } catch {
      parsed = null;
    }
    if (typeof parsed !== 'object' || parsed === null || !Array.isArray(parsed.rootfs?.diff_ids)) badCache(`records[${i}]: the config is not an image config`);
    if (diffId !== undefined && (typeof diffId !== 'string' || !listed.has(diffId))) badCache(`records[${i}] adds a layer the cache does not list`);
    return { id: id as ImageId, parent: parent as ImageId | null, config: bytes, ...(diffId !== undefined ? { diffId: diffId as DiffId } : {}) };
  });
  return { layers, records };
}

/** The record of a step image: its parent and, when it has one more layer than the parent, that layer. */
export function recordOf(image: StoredImage, parent: StoredImage | null): CacheRecord {
  const mine = image.config.rootfs.diff_ids;
  const theirs = parent?.config.rootfs.diff_ids ?? [];
  const diffId = mine.length === theirs.length + 1 ? mine[mine.length - 1] : undefined;
  return { id: image.id, parent: image.parent, config: image.bytes, ...(diffId ? { diffId } : {}) };
}

/**
 * Which committed images go into the cache: `max`, every step image of the build;
 * `min`, the final image's own chain (parent links back to a base image).
 */
export function cacheImageIds(committed: readonly ImageId[], final: ImageId, bases: ReadonlySet<ImageId>, parentOf: (id: ImageId) => ImageId | null, mode: 'min' | 'max'): ImageId[] {
  if (mode === 'max') return [...new Set(committed)].filter((id) => !bases.has(id));
  const chain: ImageId[] = [];
  for (let id: ImageId | null = final; id !== null && !bases.has(id) && !chain.includes(id); id = parentOf(id)) chain.push(id);
  return chain.reverse();
}

// ---------------------------------------------------------------------------------------------
// Export

export interface CacheExportOptions extends ClientOptions {
  progress?: ProgressSink;
}

function cacheRef(reference: string): Reference {
  const parsed = parseReference(reference);
  if (parsed.digest !== undefined) throw new RegistryError('REGISTRY_MANIFEST', `the cache ref ${reference} must be a tag, not a digest`);
  return withDefaultTag(parsed);
}

/** Pushes the records of `ids` (step images in the store) and their layers as the cache manifest `reference`. */
export async function exportCache(store: ImageStore, reference: string, ids: readonly ImageId[], opts: CacheExportOptions = {}): Promise<{ digest: string; records: number; layers: number }> {
  const ref = cacheRef(reference);
  const records: CacheRecord[] = [];
  const layers = new Map<DiffId, LayerRecord>();
  for (const id of ids) {
    const image = await store.images.require(id);
    const parent = image.parent ? await store.images.require(image.parent) : null;
    const record = recordOf(image, parent);
    records.push(record);
    if (record.diffId && !layers.has(record.diffId)) {
      const chain = (await store.layerChain(image)).pop();
      if (!chain || chain.diffId !== record.diffId) throw new RegistryError('REGISTRY_MANIFEST', `image ${id}: its top layer is not ${record.diffId}`);
      layers.set(record.diffId, chain);
    }
  }
  const config = serializeCacheConfig({ layers: [...layers.keys()], records });
  const pushed = await pushManifestOf(store, ref, [...layers.values()], { mediaType: CACHE_CONFIG_MEDIA_TYPE, bytes: config }, { ...opts, oci: true });
  return { digest: pushed.digest, records: records.length, layers: layers.size };
}

// ---------------------------------------------------------------------------------------------
// Import

export interface CacheImportOptions extends ClientOptions {
  progress?: ProgressSink;
  /** Scratch space for downloads (default: the store's tsbuild-tmp). */
  tmpDir?: string;
  /** A cache ref that cannot be read: BuildKit goes on without it. */
  warn(message: string): void;
}

interface LoadedCache {
  ref: Reference;
  client: RegistryClient;
  layers: Map<DiffId, Descriptor>;
  records: CacheRecord[];
}

/** The caches named by `--cache-from`, loaded on the first lookup; `find` is BuildDeps.remoteCache. */
export class RegistryCacheSource {
  private loaded: Promise<LoadedCache[]> | undefined;

  constructor(
    private readonly store: ImageStore,
    private readonly refs: readonly string[],
    private readonly opts: CacheImportOptions,
  ) {}

  private load(): Promise<LoadedCache[]> {
    this.loaded ??= (async () => {
      const out: LoadedCache[] = [];
      for (const r of this.refs) {
        try {
          out.push(await this.loadOne(r));
        } catch (e) {
          if (e instanceof RegistryError) this.opts.warn(`cache from ${r} not used: ${e.message}`);
          else throw e;
        }
      }
      return out;
    })();
    return this.loaded;
  }

  private async loadOne(reference: string): Promise<LoadedCache> {
    const ref = cacheRef(reference);
    const client = new RegistryClient(ref.domain, this.opts);
    const scopes = [repoScope(ref.path, 'pull')];
    const fetched = await fetchManifest(client, ref, ref.tag!, scopes);
    const manifest = parseManifest(fetched.body, fetched.contentType);
    if (manifest.kind !== 'manifest' || manifest.config.mediaType !== CACHE_CONFIG_MEDIA_TYPE) {
      throw new RegistryError('REGISTRY_MANIFEST', `${familiarString(ref)} is not a tsbuild build cache (config type ${manifest.kind === 'manifest' ? manifest.config.mediaType : manifest.mediaType})`);
    }
    const config = parseCacheConfig(await fetchConfig(client, ref, manifest.config, scopes));
    if (config.layers.length !== manifest.layers.length) badCache(`${manifest.layers.length} layers in the manifest, ${config.layers.length} in the config`);
    for (const l of manifest.layers) if (l.mediaType !== MEDIA.ociLayerGzip) badCache(`unexpected layer type ${l.mediaType}`);
    return { ref, client, layers: new Map(config.layers.map((d, i) => [d, manifest.layers[i]!])), records: config.records };
  }

  /** A cached step image for `probe` on `parent`, brought into the store; undefined when no record matches. */
  async find(parent: StoredImage | null, probe: ContainerConfig): Promise<StoredImage | undefined> {
    const parentId = parent?.id ?? null;
    const hits: { cache: LoadedCache; record: CacheRecord; config: ImageConfig }[] = [];
    for (const cache of await this.load()) {
      for (const record of cache.records) {
        if (record.parent !== parentId) continue;
        const config = JSON.parse(record.config.toString('utf8')) as ImageConfig;
        if (config.container_config && sameCacheConfig(config.container_config, probe)) hits.push({ cache, record, config });
      }
    }
    hits.sort((a, b) => Date.parse(b.config.created) - Date.parse(a.config.created));
    const hit = hits[0];
    return hit ? this.materialize(parent, hit.cache, hit.record, hit.config) : undefined;
  }

  /** The record's layer (downloaded and verified unless the store has it) and image; on failure, nothing stays. */
  private async materialize(parent: StoredImage | null, cache: LoadedCache, record: CacheRecord, config: ImageConfig): Promise<StoredImage> {
    const { store } = this;
    const before = parent?.config.rootfs.diff_ids ?? [];
    const want = record.diffId ? [...before, record.diffId] : before;
    const got = config.rootfs?.diff_ids ?? [];
    if (got.length !== want.length || got.some((d, i) => d !== want[i])) badCache(`record ${record.id}: its layers are not its parent's${record.diffId ? ' plus one' : ''}`);
    const created: ChainId[] = [];
    let dir: string | undefined;
    try {
      const top: ChainId | null = before.length > 0 ? chainIds(before).pop()! : null;
      if (record.diffId && !(await store.layers.has(chainIdOf(top, record.diffId)))) {
        const desc = cache.layers.get(record.diffId)!;
        const progress = this.opts.progress ?? silentProgress;
        const base = this.opts.tmpDir ?? (await store.scratchDir());
        await mkdir(base, { recursive: true, mode: 0o700 });
        dir = await mkdtemp(join(base, 'cache-'));
        const file = join(dir, 'blob');
        const short = desc.digest.slice(7, 19);
        await downloadBlob(cache.client, cache.ref, desc, file, [repoScope(cache.ref.path, 'pull')], progress, short, Math.max(1, this.opts.retry?.attempts ?? 4));
        const layer = await extractLayer(store, top, record.diffId, desc, file, progress, short);
        created.push(layer.chainId);
        await store.locked(() => addV2Metadata(store, record.diffId!, { Digest: desc.digest, SourceRepository: fullName(cache.ref), HMAC: '' }));
      }
      const id = await store.putImage(record.config, parent?.id ?? null);
      return await store.images.require(id);
    } catch (e) {
      await store.dropLayersNotInUse(created);
      throw e;
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }
}
