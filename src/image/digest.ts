/** Content digests with brands, so a diffID is never passed where a chainID belongs. */
import { createHash } from 'node:crypto';

export type Digest = `sha256:${string}`;
export type DiffId = Digest & { readonly __kind: 'diff' };
export type ChainId = Digest & { readonly __kind: 'chain' };
export type ImageId = Digest & { readonly __kind: 'image' };

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST.test(s);
}

export function sha256Digest(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function hexOf(d: Digest): string {
  return d.slice('sha256:'.length);
}

export function asDiffId(s: string): DiffId {
  if (!isDigest(s)) throw new Error(`not a sha256 digest: ${s}`);
  return s as DiffId;
}

export function asChainId(s: string): ChainId {
  if (!isDigest(s)) throw new Error(`not a sha256 digest: ${s}`);
  return s as ChainId;
}

export function asImageId(s: string): ImageId {
  if (!isDigest(s)) throw new Error(`not a sha256 digest: ${s}`);
  return s as ImageId;
}

/** chainIdOf results: a build's cache lookups walk the same chains step after step. */
const knownChains = new Map<string, ChainId>();

/** C1 = diffID1; Cn = sha256(C(n-1) + " " + diffIDn), over the full `sha256:` strings. */
export function chainIdOf(parent: ChainId | null, diffId: DiffId): ChainId {
  if (parent === null) return diffId as string as ChainId;
  const key = `${parent} ${diffId}`;
  let id = knownChains.get(key);
  if (id === undefined) {
    if (knownChains.size > 100_000) knownChains.clear();
    knownChains.set(key, (id = sha256Digest(key) as ChainId));
  }
  return id;
}

export function chainIds(diffIds: readonly DiffId[]): ChainId[] {
  const out: ChainId[] = [];
  let parent: ChainId | null = null;
  for (const d of diffIds) {
    parent = chainIdOf(parent, d);
    out.push(parent);
  }
  return out;
}

/** The layer of an empty diff: 1024 zero bytes. */
export const EMPTY_LAYER_DIFF_ID = asDiffId('sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
