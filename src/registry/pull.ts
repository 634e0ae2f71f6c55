/**
 * `tsbuild pull`: a manifest (a list or index resolved to one platform), its
 * config and layers into the store, the way dockerd 20.10 pulls:
 * - every manifest, config and blob is checked against its digest while it
 *   streams in, blob sizes against their descriptors, and every layer's
 *   uncompressed bytes against the config's diffID while it is extracted;
 * - up to 3 blobs download at once into a scratch dir under the store root;
 *   layers are extracted base first as soon as their turn comes; layers the store
 *   already has are not downloaded ("Already exists");
 * - gzip, zstd (through `zstd -dc`) and uncompressed layers;
 * - on success: the image, the distribution/ metadata of its layers, the tag and
 *   the `name@sha256:` digest reference; on any failure: nothing — layers this
 *   pull made are removed, no tag moves, the scratch dir goes.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { chainIdOf, isDigest, sha256Digest, type ChainId, type Digest, type DiffId } from '../image/digest.js';
import type { ImageConfig } from '../image/image.js';
import { familiarName, familiarString, fullName, parseReference, type Reference } from '../image/reference.js';
import { LayerError } from '../layer/errors.js';
import { applyLayer } from '../layer/reader.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../plan/platform.js';
import type { Platform } from '../plan/types.js';
import type { StoredImage } from '../store/imagedb.js';
import type { ImageStore } from '../store/store.js';
import { TsbuildError } from '../errors.js';
import { RegistryClient, repoScope, type ClientOptions } from './client.js';
import { decompressForApply, sniffCompression } from './decompress.js';
import { RegistryError } from './errors.js';
import { Limiter } from './limit.js';
import { MANIFEST_ACCEPT, checkImageManifest, parseManifest, platformRank, selectPlatform, type Descriptor, type ImageManifest } from './media.js';
import { addDigestReference, addV2Metadata } from './metadata.js';
import { silentProgress, type ProgressSink } from './progress.js';

export interface PullOptions extends ClientOptions {
  /** `os/arch[/variant]` or a Platform; default the host's. */
  platform?: Platform | string;
  progress?: ProgressSink;
  /** Blobs downloading at once (default 3). */
  maxConcurrentDownloads?: number;
}

export interface PullResult {
  image: StoredImage;
  /** The reference as pulled, normalised (a tag, or a digest). */
  reference: Reference;
  /** The digest of the manifest (or manifest list / index) the reference named. */
  digest: Digest;
  /** false when the reference already named this image ("Image is up to date"). */
  downloaded: boolean;
}

const MAX_MANIFEST = 4 << 20;
const MAX_CONFIG = 8 << 20;

function wantedPlatform(p: Platform | string | undefined): Platform {
  if (p === undefined || p === '') return hostPlatform();
  if (typeof p !== 'string') return p;
  const r = parsePlatform(p);
  if (typeof r === 'string') throw new RegistryError('REGISTRY_PLATFORM', `invalid platform ${r}`);
  return r;
}

async function readLimited(res: Response, limit: number, what: string): Promise<Buffer> {
  const len = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(len) && len > limit) {
    await res.body?.cancel();
    throw new RegistryError('REGISTRY_MANIFEST', `${what} is too large (${len} bytes, at most ${limit})`);
  }
  const parts: Buffer[] = [];
  let n = 0;
  if (res.body) {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        n += chunk.length;
        if (n > limit) throw new RegistryError('REGISTRY_MANIFEST', `${what} is too large (more than ${limit} bytes)`);
        parts.push(Buffer.from(chunk));
      }
    } catch (e) {
      if (e instanceof RegistryError) throw e;
      throw new RegistryError('REGISTRY_TRUNCATED', `${what}: the connection broke (${(e as Error).message})`, { cause: e });
    }
  }
  return Buffer.concat(parts);
}

interface Fetched {
  body: Buffer;
  contentType: string | null;
  digest: Digest;
}

export async function fetchManifest(client: RegistryClient, ref: Reference, reference: string, scopes: string[]): Promise<Fetched> {
  const res = await client.request('GET', `/v2/${ref.path}/manifests/${reference}`, { scopes, headers: { Accept: MANIFEST_ACCEPT } });
  const shown = isDigest(reference) ? `${familiarName(ref)}@${reference}` : `${familiarName(ref)}:${reference}`;
  if (res.status === 404) await client.fail(res, `manifest for ${shown} not found`);
  if (res.status === 401 || res.status === 403) {
    await client.fail(res, `pull access denied for ${familiarName(ref)}, repository does not exist or may require 'tsbuild login'`);
  }
  if (!res.ok) await client.fail(res, `error fetching manifest for ${shown}`);
  const body = await readLimited(res, MAX_MANIFEST, `manifest for ${shown}`);
  const actual = sha256Digest(body);
  if (isDigest(reference)) {
    if (actual !== reference) throw new RegistryError('REGISTRY_DIGEST', `manifest verification failed for digest ${reference}: got ${actual}`);
  } else {
    const header = res.headers.get('docker-content-digest');
    if (header && header.startsWith('sha256:') && header !== actual) {
      throw new RegistryError('REGISTRY_DIGEST', `manifest for ${shown}: the registry says its digest is ${header}, but its content hashes to ${actual}`);
    }
  }
  return { body, contentType: res.headers.get('content-type'), digest: actual };
}

export async function fetchConfig(client: RegistryClient, ref: Reference, desc: Descriptor, scopes: string[]): Promise<Buffer> {
  if (desc.size > MAX_CONFIG) throw new RegistryError('REGISTRY_MANIFEST', `image config ${desc.digest} is too large (${desc.size} bytes)`);
  const res = await client.request('GET', `/v2/${ref.path}/blobs/${desc.digest}`, { scopes });
  if (!res.ok) await client.fail(res, `error fetching image config ${desc.digest}`);
  const body = await readLimited(res, MAX_CONFIG, `image config ${desc.digest}`);
  if (body.length !== desc.size) throw new RegistryError('REGISTRY_TRUNCATED', `image config ${desc.digest}: got ${body.length} bytes, the manifest says ${desc.size}`);
  if (sha256Digest(body) !== desc.digest) throw new RegistryError('REGISTRY_DIGEST', `image config verification failed for digest ${desc.digest}`);
  return body;
}

function parseConfig(bytes: Buffer, digest: Digest): ImageConfig {
  let config: ImageConfig;
  try {
    config = JSON.parse(bytes.toString('utf8')) as ImageConfig;
  } catch (e) {
    throw new RegistryError('REGISTRY_MANIFEST', `image config ${digest} is not JSON`, { cause: e });
  }
  if (typeof config !== 'object' || config === null || !config.rootfs || config.rootfs.type !== 'layers' || !Array.isArray(config.rootfs.diff_ids)) {
    throw new RegistryError('REGISTRY_MANIFEST', `image config ${digest} has no rootfs of type "layers"`);
  }
  for (const d of config.rootfs.diff_ids) if (typeof d !== 'string' || !isDigest(d)) throw new RegistryError('REGISTRY_MANIFEST', `image config ${digest} has an invalid diffID ${JSON.stringify(d)}`);
  return config;
}

/** Streams a blob into `file`, checking its size and digest on the way. */
export async function downloadBlob(client: RegistryClient, ref: Reference, desc: Descriptor, file: string, scopes: string[], progress: ProgressSink, id: string, attempts: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const res = await client.request('GET', `/v2/${ref.path}/blobs/${desc.digest}`, { scopes });
    if (!res.ok) await client.fail(res, `error pulling blob ${desc.digest}`);
    if (!res.body) throw new RegistryError('REGISTRY_TRUNCATED', `blob ${desc.digest}: empty response`);
    const hash = createHash('sha256');
    let got = 0;
    let oversize = false;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        got += chunk.length;
        if (got > desc.size) {
          oversize = true;
          cb(new RegistryError('REGISTRY_TRUNCATED', `blob ${desc.digest} is larger than its descriptor says (${desc.size} bytes)`));
          return;
        }
        hash.update(chunk);
        progress.layer(id, 'Downloading', { current: got, total: desc.size });
        cb(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>), counter, createWriteStream(file));
    } catch (e) {
      if (oversize || e instanceof RegistryError) throw e;
      if (attempt < attempts) {
        progress.layer(id, `Retrying (${(e as Error).message})`);
        continue;
      }
      throw new RegistryError('REGISTRY_TRUNCATED', `unexpected EOF: blob ${desc.digest} truncated after ${got} of ${desc.size} bytes (${(e as Error).message})`, { cause: e });
    }
    if (got < desc.size) {
      if (attempt < attempts) {
        progress.layer(id, `Retrying (got ${got} of ${desc.size} bytes)`);
        continue;
      }
      throw new RegistryError('REGISTRY_TRUNCATED', `unexpected EOF: blob ${desc.digest} truncated: got ${got} of ${desc.size} bytes`);
    }
    progress.layer(id, 'Verifying Checksum');
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== desc.digest) throw new RegistryError('REGISTRY_DIGEST', `filesystem layer verification failed for digest ${desc.digest} (got ${actual})`);
    progress.layer(id, 'Download complete');
    return;
  }
}

/** Extracts a downloaded blob onto `parent`, checking the diffID. */
export async function extractLayer(store: ImageStore, parent: ChainId | null, diffId: DiffId, desc: Descriptor, file: string, progress: ProgressSink, id: string) {
  return store.putLayer(parent, async (diffDir) => {
    const fh = await open(file, 'r');
    const head = Buffer.alloc(4);
    try {
      await fh.read(head, 0, 4, 0);
    } finally {
      await fh.close();
    }
    let done = 0;
    const counted = createReadStream(file).pipe(
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          done += chunk.length;
          progress.layer(id, 'Extracting', { current: done, total: desc.size });
          cb(null, chunk);
        },
      }),
    );
    const d = decompressForApply(counted, sniffCompression(head));
    try {
      const r = await applyLayer(d.stream, diffDir, { expectDiffId: diffId });
      await d.done;
      return { diffId: r.diffId, tarSplit: r.tarSplit, size: r.size };
    } catch (e) {
      counted.destroy();
      d.stream.destroy();
      await d.done.catch(() => undefined);
      if (e instanceof LayerError && e.code === 'LAYER_DIFFID') {
        throw new RegistryError('REGISTRY_DIGEST', `layer ${desc.digest} does not match the image config: ${e.message}`, { cause: e });
      }
      if (e instanceof TsbuildError) throw e;
      throw new RegistryError('REGISTRY_MANIFEST', `cannot extract layer ${desc.digest}: ${(e as Error).message}`, { cause: e });
    }
  });
}


export async function pull(store: ImageStore, reference: string, opts: PullOptions = {}): Promise<PullResult> {
  const parsed = parseReference(reference);
  const ref: Reference = parsed.digest !== undefined ? { domain: parsed.domain, path: parsed.path, digest: parsed.digest } : { ...parsed, tag: parsed.tag ?? 'latest' };
  const want = wantedPlatform(opts.platform);
  const explicitPlatform = opts.platform !== undefined && opts.platform !== '';
  const progress = opts.progress ?? silentProgress;
  const abort = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, abort.signal]) : abort.signal;
  const client = new RegistryClient(ref.domain, { ...opts, signal });
  const scopes = [repoScope(ref.path, 'pull')];
  const tagOrDigest = ref.digest ?? ref.tag!;

  progress.message(`${tagOrDigest}: Pulling from ${ref.path}`);
  const top = await fetchManifest(client, ref, tagOrDigest, scopes);
  let manifest = parseManifest(top.body, top.contentType);
  if (manifest.kind === 'index') {
    const chosen = selectPlatform(manifest, want);
    const inner = await fetchManifest(client, ref, chosen.digest, scopes);
    manifest = parseManifest(inner.body, inner.contentType);
    if (manifest.kind !== 'manifest') throw new RegistryError('REGISTRY_MANIFEST', `manifest ${chosen.digest} for ${formatPlatform(want)} is itself an index`);
  }
  const image: ImageManifest = manifest;
  checkImageManifest(image);

  const configBytes = await fetchConfig(client, ref, image.config, scopes);
  const config = parseConfig(configBytes, image.config.digest);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== image.layers.length) {
    throw new RegistryError('REGISTRY_MANIFEST', `invalid manifest: ${image.layers.length} layers, but the image config has ${diffIds.length} diffIDs`);
  }
  if (explicitPlatform && platformRank(want, { os: config.os ?? '', architecture: config.architecture ?? '', ...(config.variant ? { variant: config.variant } : {}) }) < 0) {
    throw new RegistryError(
      'REGISTRY_PLATFORM',
      `image with reference ${familiarString(ref)} was found but does not match the specified platform: wanted ${formatPlatform(want)}, actual: ${formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) })}`,
    );
  }

  const chains: ChainId[] = [];
  let parent: ChainId | null = null;
  for (const d of diffIds) chains.push((parent = chainIdOf(parent, d)));
  const missing: boolean[] = [];
  for (const c of chains) missing.push(!(await store.layers.has(c)));

  const shortId = (d: Digest) => d.slice(7, 19);
  const created: ChainId[] = [];
  let scratch: string | undefined;
  const downloads = new Map<Digest, Promise<string>>();
  try {
    if (missing.some((m) => m)) {
      // Named after this process: swept if we are killed.
      scratch = await store.processScratchDir();
    }
    const limiter = new Limiter(Math.max(1, opts.maxConcurrentDownloads ?? 3));
    const attempts = Math.max(1, opts.retry?.attempts ?? 4);
    for (let i = 0; i < image.layers.length; i++) {
      const desc = image.layers[i]!;
      const id = shortId(desc.digest);
      if (!missing[i]) {
        progress.layer(id, 'Already exists');
        continue;
      }
      if (downloads.has(desc.digest)) continue;
      progress.layer(id, 'Pulling fs layer');
      const file = join(scratch!, desc.digest.slice(7));
      const p = limiter.run(async () => {
        if (signal.aborted) throw signal.reason;
        await downloadBlob(client, ref, desc, file, scopes, progress, id, attempts);
        return file;
      });
      p.catch(() => undefined);
      downloads.set(desc.digest, p);
    }

    parent = null;
    for (let i = 0; i < image.layers.length; i++) {
      const desc = image.layers[i]!;
      const chain = chains[i]!;
      if (missing[i] && !(await store.layers.has(chain))) {
        const file = await downloads.get(desc.digest)!;
        const record = await extractLayer(store, parent, diffIds[i]!, desc, file, progress, shortId(desc.digest));
        created.push(record.chainId);
        progress.layer(shortId(desc.digest), 'Pull complete');
      }
      parent = chain;
    }

    const id = await store.putImage(configBytes);
    if (id !== image.config.digest) throw new RegistryError('REGISTRY_DIGEST', `image ID ${id} differs from the config digest ${image.config.digest}`);

    const source = fullName(ref);
    const tagRef: Reference | undefined = ref.tag !== undefined && ref.digest === undefined ? { domain: ref.domain, path: ref.path, tag: ref.tag } : undefined;
    const before = tagRef ? await store.resolve(familiarString(tagRef)).catch(() => undefined) : await store.resolve(familiarString(ref)).catch(() => undefined);
    await store.locked(async () => {
      for (let i = 0; i < image.layers.length; i++) await addV2Metadata(store, diffIds[i]!, { Digest: image.layers[i]!.digest, SourceRepository: source, HMAC: '' });
      await addDigestReference(store, ref, ref.digest !== undefined ? (ref.digest as Digest) : top.digest, id);
    });
    if (tagRef) await store.tag(familiarString(tagRef), id);
    const stored = await store.images.require(id);
    const downloaded = before?.id !== id;
    progress.message(`Digest: ${top.digest}`);
    progress.message(`Status: ${downloaded ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarString(ref)}`);
    return { image: stored, reference: ref, digest: top.digest, downloaded };
  } catch (e) {
    abort.abort(e);
    await Promise.allSettled(downloads.values());
    await store.dropLayersNotInUse(created);
    throw e;
  } finally {
    progress.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** The image a reference names, pulled into the store (what FROM does for a missing base). */
export async function pullImage(store: ImageStore, reference: string, opts: PullOptions = {}): Promise<StoredImage> {
  return (await pull(store, reference, opts)).image;
}
