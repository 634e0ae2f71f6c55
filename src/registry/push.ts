/**
 * `tsbuild push`: an image from the store to a registry, the way dockerd 20.10
 * pushes it:
 * - each layer's tar is rebuilt from its tar-split (byte-exact, checked against
 *   its diffID) and gzip'd deterministically (no name, no time) into a scratch
 *   file; up to 5 layers upload at once;
 * - before uploading, a layer whose blob the distribution/ metadata knows is
 *   looked for with HEAD in the target repository ("Layer already exists") and
 *   mounted from another repository of the same registry ("Mounted from …");
 *   a freshly compressed blob is still checked with HEAD first;
 * - uploads are monolithic (POST, then PUT with the blob) up to `chunkSize`, and
 *   chunked (PATCH with Content-Range per chunk, then PUT) above it;
 * - then the config blob and the manifest (Docker schema2, or OCI with `oci`);
 *   the blobs' distribution/ metadata and the `name@sha256:` reference are
 *   recorded as dockerd records them.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Digest } from '../image/digest.js';
import { sha256Digest } from '../image/digest.js';
import { familiarString, fullName, parseReference, withDefaultTag, type Reference } from '../image/reference.js';
import type { LayerRecord } from '../store/layerdb.js';
import { layerTar } from '../store/layer-stream.js';
import type { ImageStore } from '../store/store.js';
import { TsbuildError } from '../errors.js';
import { metadataHmacKey } from './auth.js';
import { RegistryClient, repoScope, type ClientOptions } from './client.js';
import { sniffCompression } from './decompress.js';
import { RegistryError } from './errors.js';
import { Limiter } from './limit.js';
import { MEDIA, serializeImageManifest, type Descriptor } from './media.js';
import { addDigestReference, addV2Metadata, metadataHmac, v2MetadataOf, type V2Metadata } from './metadata.js';
import { silentProgress, type ProgressSink } from './progress.js';

export interface PushOptions extends ClientOptions {
  progress?: ProgressSink;
  /** Push an OCI image manifest instead of Docker schema2. */
  oci?: boolean;
  /** Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size (default 16 MiB). */
  chunkSize?: number;
  /** Layers uploading at once (default 5). */
  maxConcurrentUploads?: number;
}

export interface PushResult {
  reference: Reference;
  /** The manifest's digest and size, as `docker push` prints them. */
  digest: Digest;
  size: number;
  mediaType: string;
  manifest: Buffer;
}

const MAX_EXISTENCE_CHECKS = 3;
const MAX_MOUNT_ATTEMPTS = 3;

interface Target {
  client: RegistryClient;
  ref: Reference;
  scopes: string[];
  progress: ProgressSink;
  chunkSize: number;
}

function blobPath(ref: Reference, digest: Digest): string {
  return `/v2/${ref.path}/blobs/${digest}`;
}

/** The blob's size when the repository has it. */
async function headBlob(t: Target, digest: Digest, scopes = t.scopes): Promise<number | undefined> {
  const res = await t.client.request('HEAD', blobPath(t.ref, digest), { scopes });
  if (res.status === 404) return undefined;
  if (!res.ok) await t.client.fail(res, `error checking blob ${digest}`);
  const n = Number(res.headers.get('content-length'));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The first bytes of a blob in the target repository: is it gzip? */
async function isGzipBlob(t: Target, digest: Digest): Promise<boolean> {
  const res = await t.client.request('GET', blobPath(t.ref, digest), { scopes: t.scopes, headers: { Range: 'bytes=0-3' } });
  if (!res.ok) {
    await res.body?.cancel();
    return false;
  }
  const head: Buffer[] = [];
  let n = 0;
  const reader = res.body?.getReader();
  if (!reader) return false;
  try {
    while (n < 4) {
      const r = await reader.read();
      if (r.done) break;
      head.push(Buffer.from(r.value));
      n += r.value.length;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return sniffCompression(Buffer.concat(head)) === 'gzip';
}

function uploadUrl(t: Target, res: Response): URL {
  const loc = res.headers.get('location');
  if (!loc) throw new RegistryError('REGISTRY_HTTP', `the registry started an upload without a Location`);
  return new URL(loc, `${t.client.baseUrl}/`);
}

async function startUpload(t: Target, mount?: { digest: Digest; from: string }): Promise<{ mounted: true } | { mounted: false; url: URL }> {
  const scopes = mount ? [...t.scopes, repoScope(mount.from, 'pull')] : t.scopes;
  const query = mount ? `?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}` : '';
  const res = await t.client.request('POST', `/v2/${t.ref.path}/blobs/uploads/${query}`, { scopes, headers: { 'Content-Length': '0' } });
  if (mount && res.status === 201) {
    await res.body?.cancel();
    return { mounted: true };
  }
  if (res.status !== 202) await t.client.fail(res, `error starting an upload to ${fullName(t.ref)}`);
  await res.body?.cancel();
  return { mounted: false, url: uploadUrl(t, res) };
}

/** Uploads `size` bytes read by `read(start, end)` as blob `digest`; a failed try restarts the upload. */
async function uploadBlob(t: Target, digest: Digest, size: number, read: (start: number, end: number) => Promise<Buffer>, id: string | undefined, started?: URL): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      let url = started && attempt === 1 ? started : (await startUpload(t).then((s) => (s.mounted ? undefined : s.url)))!;
      const octet = { 'Content-Type': 'application/octet-stream' };
      let finalBody: Buffer | undefined;
      if (size <= t.chunkSize) {
        finalBody = await read(0, size);
      } else {
        for (let off = 0; off < size; off += t.chunkSize) {
          const data = await read(off, Math.min(size, off + t.chunkSize));
          const res = await t.client.request('PATCH', url.toString(), {
            scopes: t.scopes,
            headers: { ...octet, 'Content-Range': `${off}-${off + data.length - 1}`, 'Content-Length': String(data.length) },
            body: () => data,
          });
          if (res.status !== 202) await t.client.fail(res, `error uploading blob ${digest}`);
          await res.body?.cancel();
          url = uploadUrl(t, res);
          if (id) t.progress.layer(id, 'Pushing', { current: off + data.length, total: size });
        }
      }
      url.searchParams.set('digest', digest);
      const body = finalBody ?? Buffer.alloc(0);
      const res = await t.client.request('PUT', url.toString(), { scopes: t.scopes, headers: { ...octet, 'Content-Length': String(body.length) }, body: () => body });
      if (res.status !== 201 && res.status !== 204) await t.client.fail(res, `error uploading blob ${digest}`);
      await res.body?.cancel();
      const echoed = res.headers.get('docker-content-digest');
      if (echoed && echoed !== digest) throw new RegistryError('REGISTRY_DIGEST', `the registry stored blob ${digest} as ${echoed}`);
      if (id) t.progress.layer(id, 'Pushing', { current: size, total: size });
      return;
    } catch (e) {
      const retry = e instanceof RegistryError && (e.code === 'REGISTRY_UNAVAILABLE' || e.code === 'REGISTRY_NETWORK' || e.status === 416);
      if (!retry || attempt >= 2) throw e;
      if (id) t.progress.layer(id, `Retrying (${e.message})`);
    }
  }
}

/** Rebuilds the layer tar, checks it against the diffID, and gzips it into `file`. */
async function compressLayer(store: ImageStore, layer: LayerRecord, file: string): Promise<{ digest: Digest; size: number }> {
  const tar = await layerTar(store, layer);
  const raw = createHash('sha256');
  const packed = createHash('sha256');
  let size = 0;
  await pipeline(
    tar.open(),
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        raw.update(chunk);
        cb(null, chunk);
      },
    }),
    createGzip(),
    new Transform({
      transform(chunk: Buffer, _e, cb) {
        packed.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    }),
    createWriteStream(file),
  );
  const diffId = `sha256:${raw.digest('hex')}`;
  if (diffId !== layer.diffId) throw new RegistryError('REGISTRY_DIGEST', `layer ${layer.chainId} no longer matches its diffID ${layer.diffId} (rebuilt tar hashes to ${diffId}); the store is damaged`);
  return { digest: `sha256:${packed.digest('hex')}`, size };
}

async function fileReader(file: string): Promise<{ read: (start: number, end: number) => Promise<Buffer>; close: () => Promise<void> }> {
  const fh = await open(file, 'r');
  return {
    read: async (start, end) => {
      const buf = Buffer.alloc(end - start);
      let off = 0;
      while (off < buf.length) {
        const { bytesRead } = await fh.read(buf, off, buf.length - off, start + off);
        if (bytesRead === 0) throw new Error(`${file}: short read`);
        off += bytesRead;
      }
      return buf;
    },
    close: () => fh.close(),
  };
}

export async function pushImage(store: ImageStore, reference: string, opts: PushOptions = {}): Promise<PushResult> {
  const parsed = parseReference(reference);
  if (parsed.digest !== undefined) throw new RegistryError('REGISTRY_MANIFEST', `cannot push a digest reference (${reference}): push a tag`);
  const ref = withDefaultTag(parsed);
  const image = await store.resolve(familiarString(ref));
  if (!image) throw new TsbuildError('NO_IMAGE', `An image does not exist locally with the tag: ${familiarString(ref)}`);
  const progress = opts.progress ?? silentProgress;
  try {
    const layers = await store.layerChain(image);
    const config = { mediaType: opts.oci ? MEDIA.ociConfig : MEDIA.dockerConfig, bytes: image.bytes };
    const pushed = await pushManifestOf(store, ref, layers, config, { ...opts, progress });
    await store.locked(() => addDigestReference(store, ref, pushed.digest, image.id));
    progress.message(`${ref.tag}: digest: ${pushed.digest} size: ${pushed.manifest.length}`);
    return { reference: ref, digest: pushed.digest, size: pushed.manifest.length, mediaType: pushed.mediaType, manifest: pushed.manifest };
  } finally {
    progress.close();
  }
}

/**
 * Pushes `layers` (deduplicated by diffID: HEAD, cross-repository mount, else
 * compress and upload), the config blob, and a manifest listing them in order,
 * tagged `ref.tag`. Shared by image pushes and the build cache (registry/cache.ts),
 * whose config is not an image config. Does not close `opts.progress`.
 */
export async function pushManifestOf(store: ImageStore, ref: Reference, layers: LayerRecord[], config: { mediaType: string; bytes: Buffer }, opts: PushOptions = {}): Promise<{ digest: Digest; mediaType: string; manifest: Buffer }> {
  const progress = opts.progress ?? silentProgress;
  const abort = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, abort.signal]) : abort.signal;
  const client = new RegistryClient(ref.domain, { ...opts, signal });
  const t: Target = { client, ref, scopes: [repoScope(ref.path, 'pull,push')], progress, chunkSize: Math.max(1, opts.chunkSize ?? 16 << 20) };
  const source = fullName(ref);
  const layerType = opts.oci ? MEDIA.ociLayerGzip : MEDIA.dockerLayerGzip;

  progress.message(`The push refers to repository [${source}]`);
  const unique = [...new Map(layers.map((l) => [l.diffId, l])).values()];
  const shortId = (l: LayerRecord) => l.diffId.slice(7, 19);
  for (const l of [...unique].reverse()) progress.layer(shortId(l), 'Preparing');

  let scratch: string | undefined;
  const scratchDir = async () => {
    if (!scratch) {
      // Named after this process: swept if we are killed.
      scratch ??= await store.processScratchDir();
    }
    return scratch;
  };

  try {
    await client.ping();
    const hmacKey = metadataHmacKey(await client.credentials());
    const record = (l: LayerRecord, digest: Digest) =>
      store.locked(() => addV2Metadata(store, l.diffId, { Digest: digest, SourceRepository: source, HMAC: metadataHmac(hmacKey, digest, source) }));

    const pushLayer = async (l: LayerRecord): Promise<Descriptor> => {
      const id = shortId(l);
      const known: V2Metadata[] = (await v2MetadataOf(store, l.diffId)).reverse();
      // 1. A blob this repository already has.
      for (const m of known.filter((k) => k.SourceRepository === source).slice(0, MAX_EXISTENCE_CHECKS)) {
        const size = await headBlob(t, m.Digest);
        if (size !== undefined && (await isGzipBlob(t, m.Digest))) {
          progress.layer(id, 'Layer already exists');
          await record(l, m.Digest);
          return { mediaType: layerType, digest: m.Digest, size };
        }
      }
      // 2. A blob another repository of this registry has: mount it.
      let started: URL | undefined;
      const prefix = `${ref.domain}/`;
      for (const m of known.filter((k) => k.SourceRepository !== source && k.SourceRepository.startsWith(prefix)).slice(0, MAX_MOUNT_ATTEMPTS)) {
        const from = m.SourceRepository.slice(prefix.length);
        let r: Awaited<ReturnType<typeof startUpload>>;
        try {
          r = await startUpload(t, { digest: m.Digest, from });
        } catch (e) {
          if (e instanceof RegistryError && (e.code === 'REGISTRY_AUTH' || e.code === 'REGISTRY_DENIED' || e.code === 'REGISTRY_NOT_FOUND')) continue;
          throw e;
        }
        if (!r.mounted) {
          started ??= r.url;
          continue;
        }
        const size = await headBlob(t, m.Digest);
        if (size !== undefined && (await isGzipBlob(t, m.Digest))) {
          progress.layer(id, `Mounted from ${from}`);
          await record(l, m.Digest);
          return { mediaType: layerType, digest: m.Digest, size };
        }
      }
      // 3. Compress, check again, upload.
      const file = join(await scratchDir(), `${l.chainId.slice(7)}.tar.gz`);
      const { digest, size } = await compressLayer(store, l, file);
      const have = await headBlob(t, digest);
      if (have === size) {
        progress.layer(id, 'Layer already exists');
      } else {
        const reader = await fileReader(file);
        try {
          await uploadBlob(t, digest, size, reader.read, id, started);
        } finally {
          await reader.close();
        }
        progress.layer(id, 'Pushed');
      }
      await rm(file, { force: true });
      await record(l, digest);
      return { mediaType: layerType, digest, size };
    };

    const limiter = new Limiter(Math.max(1, opts.maxConcurrentUploads ?? 5));
    const jobs = unique.map((l) => limiter.run(() => (signal.aborted ? Promise.reject(signal.reason) : pushLayer(l))));
    let byDiffId: Map<string, Descriptor>;
    try {
      const descs = await Promise.all(jobs);
      byDiffId = new Map(unique.map((l, i) => [l.diffId, descs[i]!]));
    } catch (e) {
      abort.abort(e);
      await Promise.allSettled(jobs);
      throw e;
    }

    // The config, then the manifest.
    const configDigest = sha256Digest(config.bytes);
    const configDesc: Descriptor = { mediaType: config.mediaType, digest: configDigest, size: config.bytes.length };
    if ((await headBlob(t, configDigest)) !== config.bytes.length) {
      await uploadBlob(t, configDigest, config.bytes.length, async (s, e) => config.bytes.subarray(s, e), undefined);
    }
    const mediaType = opts.oci ? MEDIA.ociManifest : MEDIA.dockerManifest;
    const manifest = serializeImageManifest(mediaType, configDesc, layers.map((l) => byDiffId.get(l.diffId)!));
    const digest = sha256Digest(manifest);
    const res = await client.request('PUT', `/v2/${ref.path}/manifests/${ref.tag}`, { scopes: t.scopes, headers: { 'Content-Type': mediaType }, body: () => manifest });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) await client.fail(res, `error pushing the manifest of ${familiarString(ref)}`);
    await res.body?.cancel();
    const echoed = res.headers.get('docker-content-digest');
    if (echoed && echoed !== digest) throw new RegistryError('REGISTRY_DIGEST', `the registry stored the manifest as ${echoed}, not ${digest}`);
    return { digest, mediaType, manifest };
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}
