/**
 * `image/overlay2/distribution/` as dockerd 20.10 writes it (moby
 * distribution/metadata), so a dockerd on the store knows which blobs its layers
 * came from (`docker push` then says "Layer already exists" or mounts them):
 * - `diffid-by-digest/sha256/<blob hex>`: `sha256:<diffID>`;
 * - `v2metadata-by-diffid/sha256/<diffID hex>`: a JSON array (≤ 50, oldest
 *   first) of `{"Digest","SourceRepository","HMAC"}`; a new entry replaces an
 *   equal one and goes last.
 * Directories 0700 (the base) and 0755, files 0644, no newline, atomic writes.
 * Also the `name@sha256:` references a pull or push adds to repositories.json.
 */
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asDiffId, hexOf, isDigest, type Digest, type DiffId, type ImageId } from '../image/digest.js';
import { familiarString, type Reference } from '../image/reference.js';
import { mkdirMode, writeFileAtomic } from '../store/fsutil.js';
import { addReference, readRepositories, writeRepositories } from '../store/repositories.js';
import type { ImageStore } from '../store/store.js';
import { readOptional } from '../store/fsutil.js';

export interface V2Metadata {
  Digest: Digest;
  SourceRepository: string;
  HMAC: string;
}

const MAX_METADATA = 50;

function baseDir(store: ImageStore): string {
  return join(store.layout.imageRoot, 'distribution');
}

async function setFile(store: ImageStore, namespace: string, digest: Digest, value: string): Promise<void> {
  const base = baseDir(store);
  await mkdirMode(base, 0o700);
  const dir = join(base, namespace, 'sha256');
  await mkdirMode(join(base, namespace), 0o755);
  await mkdirMode(dir, 0o755);
  await writeFileAtomic(join(dir, hexOf(digest)), value, 0o644);
}

/** The diffID a blob was registered as, if known. */
export async function diffIdByDigest(store: ImageStore, blob: Digest): Promise<DiffId | undefined> {
  const v = await readOptional(join(baseDir(store), 'diffid-by-digest', 'sha256', hexOf(blob)));
  return v !== undefined && isDigest(v) ? asDiffId(v) : undefined;
}

/** Where a layer's blobs are known to live, oldest first. */
export async function v2MetadataOf(store: ImageStore, diffId: DiffId): Promise<V2Metadata[]> {
  const v = await readOptional(join(baseDir(store), 'v2metadata-by-diffid', 'sha256', hexOf(diffId)));
  if (v === undefined) return [];
  try {
    const list = JSON.parse(v) as V2Metadata[];
    return Array.isArray(list) ? list.filter((m) => m && typeof m.Digest === 'string' && isDigest(m.Digest)) : [];
  } catch {
    return [];
  }
}

/** moby ComputeV2MetadataHMAC: hex HMAC-SHA256 of Digest + SourceRepository; empty without a key. */
export function metadataHmac(key: Buffer | undefined, digest: Digest, repo: string): string {
  if (!key || key.length === 0) return '';
  return createHmac('sha256', key).update(digest).update(repo).digest('hex');
}

/** v2MetadataService.Add: records `blob` as a source of `diffId` (callers hold the store lock). */
export async function addV2Metadata(store: ImageStore, diffId: DiffId, meta: V2Metadata): Promise<void> {
  await setFile(store, 'diffid-by-digest', meta.Digest, diffId);
  const old = await v2MetadataOf(store, diffId);
  const same = (m: V2Metadata) => m.Digest === meta.Digest && m.SourceRepository === meta.SourceRepository && m.HMAC === meta.HMAC;
  let list = [...old.filter((m) => !same(m)), { Digest: meta.Digest, SourceRepository: meta.SourceRepository, HMAC: meta.HMAC }];
  if (list.length > MAX_METADATA) list = list.slice(list.length - MAX_METADATA);
  await setFile(store, 'v2metadata-by-diffid', diffId, JSON.stringify(list));
}

/**
 * moby addDigestReference: `name@sha256:…` → image, unless that digest already
 * names another image (dockerd keeps the old one and logs). Callers hold the lock.
 */
export async function addDigestReference(store: ImageStore, ref: Reference, manifestDigest: Digest, id: ImageId): Promise<void> {
  const digestRef: Reference = { domain: ref.domain, path: ref.path, digest: manifestDigest };
  const repos = await readRepositories(store.layout.repositoriesJson);
  const key = familiarString(digestRef);
  for (const refs of Object.values(repos)) if (refs[key] !== undefined) return;
  addReference(repos, digestRef, id);
  await writeRepositories(store.layout.repositoriesJson, repos);
}
