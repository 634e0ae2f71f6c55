/**
 * Manifests as the distribution API v2 serves them: Docker schema2 manifests and
 * manifest lists, OCI image manifests and indexes. Parsing checks the shape we
 * depend on; platform selection follows containerd's matcher (what dockerd 20.10
 * uses for manifest lists), including its ARM and amd64 variant fallbacks.
 */
import { isDigest, type Digest } from '../image/digest.js';
import { formatPlatform, parsePlatform } from '../plan/platform.js';
import type { Platform } from '../plan/types.js';
import { RegistryError } from './errors.js';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociNondistTar: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociNondistZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
} as const;

/** What a manifest GET accepts, best first (Docker sends the same set). */
export const MANIFEST_ACCEPT = [MEDIA.dockerManifest, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.ociIndex].join(', ');

const LAYER_TYPES = new Set<string>([
  MEDIA.dockerLayerGzip,
  MEDIA.dockerLayerTar,
  MEDIA.dockerForeignLayerGzip,
  MEDIA.ociLayerTar,
  MEDIA.ociLayerGzip,
  MEDIA.ociLayerZstd,
  MEDIA.ociNondistTar,
  MEDIA.ociNondistGzip,
  MEDIA.ociNondistZstd,
]);
const CONFIG_TYPES = new Set<string>([MEDIA.dockerConfig, MEDIA.ociConfig]);

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  platform?: { os: string; architecture: string; variant?: string; 'os.version'?: string; 'os.features'?: string[] };
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ManifestIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

export type Manifest = ImageManifest | ManifestIndex;

function bad(what: string): never {
  throw new RegistryError('REGISTRY_MANIFEST', `invalid manifest: ${what}`);
}

function descriptor(v: unknown, where: string): Descriptor {
  if (typeof v !== 'object' || v === null) bad(`${where} is not an object`);
  const d = v as Record<string, unknown>;
  if (typeof d['digest'] !== 'string' || !isDigest(d['digest'])) bad(`${where} has no sha256 digest (${JSON.stringify(d['digest'])})`);
  if (typeof d['size'] !== 'number' || !Number.isSafeInteger(d['size']) || d['size'] < 0) bad(`${where} has no valid size`);
  const out: Descriptor = { mediaType: typeof d['mediaType'] === 'string' ? d['mediaType'] : '', digest: d['digest'], size: d['size'] };
  if (Array.isArray(d['urls'])) out.urls = d['urls'].filter((u): u is string => typeof u === 'string');
  const p = d['platform'];
  if (typeof p === 'object' && p !== null) {
    const q = p as Record<string, unknown>;
    if (typeof q['os'] === 'string' && typeof q['architecture'] === 'string') {
      out.platform = { os: q['os'], architecture: q['architecture'] };
      if (typeof q['variant'] === 'string' && q['variant'] !== '') out.platform.variant = q['variant'];
    }
  }
  if (typeof d['annotations'] === 'object' && d['annotations'] !== null) out.annotations = d['annotations'] as Record<string, string>;
  return out;
}

/** The media type a body carries: the Content-Type header, else its own mediaType field, else its shape. */
export function parseManifest(body: Buffer, contentType: string | null): Manifest {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new RegistryError('REGISTRY_MANIFEST', `invalid manifest: not JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad('not a JSON object');
  const header = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const own = typeof doc['mediaType'] === 'string' ? doc['mediaType'] : '';
  let type = [MEDIA.dockerManifest, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerSchema1, MEDIA.dockerSchema1Signed].find((t) => t === header) ?? own;
  if (type === '' || type === 'application/json' || type === 'application/octet-stream') {
    if (doc['schemaVersion'] === 1) type = MEDIA.dockerSchema1;
    else if (Array.isArray(doc['manifests'])) type = MEDIA.ociIndex;
    else if (doc['config'] !== undefined) type = MEDIA.ociManifest;
  }
  if (type === MEDIA.dockerSchema1 || type === MEDIA.dockerSchema1Signed || doc['schemaVersion'] === 1) {
    throw new RegistryError('REGISTRY_MANIFEST', 'the image uses a Docker schema 1 manifest, which is deprecated and not supported; push it again with a current client');
  }
  if (doc['schemaVersion'] !== 2) bad(`schemaVersion ${JSON.stringify(doc['schemaVersion'])} is not 2`);
  if (own !== '' && own !== type && header !== '') bad(`media type ${own} in the body does not match Content-Type ${header}`);
  if (type === MEDIA.dockerList || type === MEDIA.ociIndex) {
    if (!Array.isArray(doc['manifests'])) bad('an index without "manifests"');
    return { kind: 'index', mediaType: type, manifests: (doc['manifests'] as unknown[]).map((m, i) => descriptor(m, `manifests[${i}]`)) };
  }
  if (type === MEDIA.dockerManifest || type === MEDIA.ociManifest) {
    const config = descriptor(doc['config'], 'config');
    if (!Array.isArray(doc['layers'])) bad('a manifest without "layers"');
    const layers = (doc['layers'] as unknown[]).map((l, i) => descriptor(l, `layers[${i}]`));
    return { kind: 'manifest', mediaType: type, config, layers };
  }
  throw new RegistryError('REGISTRY_MANIFEST', `unsupported manifest media type ${JSON.stringify(type)}`);
}

/** A manifest we can turn into an image: a container config and layers we know how to read. */
export function checkImageManifest(m: ImageManifest): void {
  if (!CONFIG_TYPES.has(m.config.mediaType)) {
    throw new RegistryError('REGISTRY_MANIFEST', `unsupported config media type ${JSON.stringify(m.config.mediaType)}: the manifest is not a container image`);
  }
  for (const l of m.layers) {
    if (!LAYER_TYPES.has(l.mediaType)) throw new RegistryError('REGISTRY_MANIFEST', `unsupported layer media type ${JSON.stringify(l.mediaType)} (layer ${l.digest})`);
  }
}

/** Manifest bytes as Docker's distribution library writes them (json.MarshalIndent with 3 spaces). */
export function serializeImageManifest(mediaType: string, config: Descriptor, layers: Descriptor[]): Buffer {
  const desc = (d: Descriptor) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest, ...(d.urls && d.urls.length > 0 ? { urls: d.urls } : {}) });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config: desc(config), layers: layers.map(desc) }, null, 3));
}

// ---------------------------------------------------------------------------------------------
// Platforms

function normalize(p: { os: string; architecture: string; variant?: string }): Platform | undefined {
  const r = parsePlatform([p.os, p.architecture, p.variant].filter((x) => x).join('/'));
  return typeof r === 'string' ? undefined : r;
}

/** Variants a platform can run, best first (containerd's platforms.Only). */
function compatibleVariants(want: Platform): (string | undefined)[] {
  const v = want.variant;
  if (want.architecture === 'arm') {
    const order = ['v8', 'v7', 'v6', 'v5'];
    const i = order.indexOf(v ?? 'v7');
    return i >= 0 ? order.slice(i) : [v];
  }
  if (want.architecture === 'amd64') {
    const order = ['v4', 'v3', 'v2'];
    const i = v === undefined ? order.length : order.indexOf(v);
    return i >= 0 ? [...order.slice(i), undefined] : [v];
  }
  if (want.architecture === 'arm64') return v === undefined ? [undefined] : [v, undefined];
  return [v];
}

/** 0 for the best match, higher for worse ones, -1 for none. */
export function platformRank(want: Platform, have: { os: string; architecture: string; variant?: string }): number {
  const w = normalize(want);
  const h = normalize(have);
  if (!w || !h) return -1;
  if (w.os !== h.os || w.architecture !== h.architecture) return -1;
  return compatibleVariants(w).indexOf(h.variant);
}

/** The entry of an index for `want`: the best-ranked, first in list order among equals. */
export function selectPlatform(index: ManifestIndex, want: Platform): Descriptor {
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  for (const d of index.manifests) {
    if (!d.platform) continue;
    if (d.mediaType !== '' && d.mediaType !== MEDIA.dockerManifest && d.mediaType !== MEDIA.ociManifest) continue;
    const r = platformRank(want, d.platform);
    if (r >= 0 && r < bestRank) {
      best = d;
      bestRank = r;
    }
  }
  if (!best) {
    const offered = index.manifests.filter((d) => d.platform).map((d) => formatPlatform(d.platform as Platform));
    throw new RegistryError('REGISTRY_PLATFORM', `no matching manifest for ${formatPlatform(want)} in the manifest list entries${offered.length > 0 ? ` (available: ${offered.join(', ')})` : ''}`);
  }
  return best;
}
