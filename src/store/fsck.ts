/**
 * `tsbuild fsck`: checks a store the way dockerd 20.10 would load it, and more —
 * every config against its ID, every layer chain, each layerdb file (present, no
 * trailing newline, chainID = its parent and diff), each overlay2 dir and `l/`
 * link and `lower` file, every layer's tar reassembled from its tar-split and diff
 * dir against its diffID, tags naming missing images, and orphans (dirs, links,
 * layers no image uses). `repair` removes what is broken or orphaned, over a few
 * rounds (removing a broken layer breaks the images on it, and so on).
 *
 * The whole check runs under the store lock, so it sees no half-done write.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { asChainId, asDiffId, asImageId, chainIdOf, chainIds, sha256Digest, type ChainId, type ImageId } from '../image/digest.js';
import type { ImageConfig } from '../image/image.js';
import { parseReference } from '../image/reference.js';
import { layerTar } from './layer-stream.js';
import type { LayerRecord } from './layerdb.js';
import { ownerAlive } from './lock.js';
import { INCOMPLETE } from './overlay2.js';
import { readRepositories, removeReference, writeRepositories } from './repositories.js';
import type { ImageStore } from './store.js';

export type FindingKind = 'image' | 'layer' | 'overlay' | 'link' | 'tag' | 'orphan' | 'tmp';

export interface Finding {
  kind: FindingKind;
  /** What is wrong, naming the path or ID. */
  message: string;
  /** How --repair fixes it; absent when it cannot. */
  repair?: () => Promise<void>;
}

export interface FsckOptions {
  /** Reassemble every layer's tar and hash it (default true; the slow part). */
  verifyData?: boolean;
  repair?: boolean;
  /** Called for each finding as it is made (and each repair). */
  report?: (line: string) => void;
}

export interface FsckResult {
  images: number;
  layers: number;
  /** Findings of the last round: with repair, what could not be repaired. */
  findings: Finding[];
  repaired: number;
}

async function readRaw(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function isDir(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined))?.isDirectory() ?? false;
}

async function hashLayer(store: ImageStore, layer: LayerRecord): Promise<string> {
  const tar = await layerTar(store, layer);
  const hash = createHash('sha256');
  await pipeline(tar.open(), async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) hash.update(chunk);
  });
  return `sha256:${hash.digest('hex')}`;
}

/** One pass over the store; returns its findings (each with its repair, when there is one). */
async function checkOnce(store: ImageStore, opts: FsckOptions): Promise<{ images: number; layers: number; findings: Finding[] }> {
  const { layout } = store;
  const findings: Finding[] = [];
  const add = (kind: FindingKind, message: string, repair?: () => Promise<void>) => findings.push(repair ? { kind, message, repair } : { kind, message });

  // --- layerdb ---
  const layers = new Map<ChainId, LayerRecord>();
  const badLayers = new Set<ChainId>();
  const removeLayerDir = (hex: string) => async () => {
    await store.layers.remove(asChainId(`sha256:${hex}`));
  };
  for (const name of await readdir(layout.layersDir)) {
    const dir = join(layout.layersDir, name);
    if (!/^[0-9a-f]{64}$/.test(name) || !(await isDir(dir))) {
      add('orphan', `layerdb: unexpected entry ${dir}`, () => rm(dir, { recursive: true, force: true }));
      continue;
    }
    const chainId = asChainId(`sha256:${name}`);
    const files = { diff: await readRaw(join(dir, 'diff')), size: await readRaw(join(dir, 'size')), cacheId: await readRaw(join(dir, 'cache-id')), parent: await readRaw(join(dir, 'parent')) };
    const problems: string[] = [];
    for (const f of ['diff', 'size', 'cache-id'] as const) {
      const v = files[f === 'cache-id' ? 'cacheId' : f];
      if (v === undefined) problems.push(`${f} is missing`);
      else if (v !== v.trim() || v === '') problems.push(`${f} is empty or has surrounding whitespace (dockerd fails to load it)`);
    }
    if (files.size !== undefined && !/^\d+$/.test(files.size)) problems.push(`size ${JSON.stringify(files.size)} is not a number`);
    if (files.cacheId !== undefined && !/^[A-Za-z0-9-]+$/.test(files.cacheId)) problems.push(`cache-id ${JSON.stringify(files.cacheId)} is not a dir name`);
    if ((await lstat(join(dir, 'tar-split.json.gz')).catch(() => undefined))?.isFile() !== true) problems.push('tar-split.json.gz is missing');
    let diffId;
    let parent: ChainId | null = null;
    try {
      if (files.diff !== undefined) diffId = asDiffId(files.diff);
      if (files.parent !== undefined) parent = asChainId(files.parent);
    } catch (e) {
      problems.push((e as Error).message);
    }
    if (diffId !== undefined && problems.length === 0 && chainIdOf(parent, diffId) !== chainId) problems.push(`chainID of parent ${parent ?? '(none)'} and diff ${diffId} is ${chainIdOf(parent, diffId)}, not the dir name`);
    for (const n of await readdir(dir)) if (!['diff', 'size', 'cache-id', 'parent', 'tar-split.json.gz'].includes(n)) problems.push(`unexpected file ${n}`);
    if (problems.length > 0 || diffId === undefined) {
      badLayers.add(chainId);
      add('layer', `layer ${chainId}: ${problems.join('; ')}`, removeLayerDir(name));
      continue;
    }
    layers.set(chainId, { chainId, diffId, parent, cacheId: files.cacheId!, size: Number(files.size) });
  }
  for (const name of await readdir(layout.layerTmpDir)) add('tmp', `layerdb/tmp holds ${name} (a half-written layer)`, () => rm(join(layout.layerTmpDir, name), { recursive: true, force: true }));

  // --- overlay2 dirs of the layers, their links and lowers ---
  const mounted = await store.layers.mountCacheIds();
  const linkOf = new Map<string, string>();
  for (const name of await store.overlay.names()) {
    const link = await readRaw(join(store.overlay.dirOf(name), 'link'));
    if (link !== undefined) linkOf.set(name, link);
  }
  for (const layer of layers.values()) {
    const problems: string[] = [];
    const dir = store.overlay.dirOf(layer.cacheId);
    if (layer.parent !== null && !layers.has(layer.parent)) problems.push(`its parent ${layer.parent} is ${badLayers.has(layer.parent) ? 'broken' : 'missing'}`);
    if (!(await isDir(dir))) problems.push(`its overlay2 dir ${dir} is missing`);
    else {
      if (!(await isDir(join(dir, 'diff')))) problems.push(`${dir}/diff is missing`);
      const owner = await store.overlay.incompleteOwner(layer.cacheId);
      if (owner !== undefined) problems.push(`${dir} is still marked incomplete (${INCOMPLETE})`);
      const lid = linkOf.get(layer.cacheId);
      if (lid === undefined || lid === '' || lid !== lid.trim()) problems.push(`${dir}/link is missing or malformed`);
      else if (!(await store.overlay.linkValid(lid))) problems.push(`l/${lid} does not lead to ${dir}/diff`);
      const lower = await readRaw(join(dir, 'lower'));
      if (layer.parent === null) {
        if (lower !== undefined) problems.push(`a base layer has a lower file`);
      } else {
        const parent = layers.get(layer.parent);
        if (parent) {
          const parentLid = linkOf.get(parent.cacheId);
          const parentLower = await readRaw(join(store.overlay.dirOf(parent.cacheId), 'lower'));
          const want = [`l/${parentLid}`, ...(parentLower ? parentLower.split(':') : [])].join(':');
          if (lower !== want) problems.push(`lower is ${JSON.stringify(lower)}, not ${JSON.stringify(want)}`);
        }
        if (!(await isDir(join(dir, 'work')))) problems.push(`${dir}/work is missing`);
      }
    }
    if (problems.length === 0 && opts.verifyData !== false) {
      try {
        const got = await hashLayer(store, layer);
        if (got !== layer.diffId) problems.push(`its tar reassembled from tar-split and ${dir}/diff hashes to ${got}, not its diffID ${layer.diffId}`);
      } catch (e) {
        problems.push(`its tar cannot be reassembled: ${(e as Error).message}`);
      }
    }
    if (problems.length > 0) {
      badLayers.add(layer.chainId);
      add('layer', `layer ${layer.chainId}: ${problems.join('; ')}`, async () => {
        await store.layers.remove(layer.chainId);
        await store.overlay.remove(layer.cacheId);
      });
    }
  }
  // A child of a broken layer is broken, too.
  for (let changed = true; changed; ) {
    changed = false;
    for (const l of layers.values()) {
      if (badLayers.has(l.chainId) || l.parent === null || !badLayers.has(l.parent)) continue;
      badLayers.add(l.chainId);
      changed = true;
      add('layer', `layer ${l.chainId}: its parent ${l.parent} is broken`, async () => {
        await store.layers.remove(l.chainId);
        await store.overlay.remove(l.cacheId);
      });
    }
  }
  const goodLayers = new Map([...layers].filter(([c]) => !badLayers.has(c)));

  // --- imagedb ---
  const images = new Map<ImageId, ImageConfig>();
  const parents = new Map<ImageId, ImageId>();
  for (const name of await readdir(layout.contentDir)) {
    const path = join(layout.contentDir, name);
    if (!/^[0-9a-f]{64}$/.test(name)) {
      add('orphan', `imagedb: unexpected file ${path}`, () => rm(path, { recursive: true, force: true }));
      continue;
    }
    const id = asImageId(`sha256:${name}`);
    const removeImage = () => store.images.remove(id);
    const bytes = await readFile(path);
    if (sha256Digest(bytes) !== id) {
      add('image', `image ${id}: its config hashes to ${sha256Digest(bytes)}`, removeImage);
      continue;
    }
    let config: ImageConfig;
    try {
      config = JSON.parse(bytes.toString('utf8')) as ImageConfig;
      if (!config.rootfs || config.rootfs.type !== 'layers' || !Array.isArray(config.rootfs.diff_ids)) throw new Error('no rootfs of type layers');
      config.rootfs.diff_ids.forEach((d) => asDiffId(d));
    } catch (e) {
      add('image', `image ${id}: config is not a valid image: ${(e as Error).message}`, removeImage);
      continue;
    }
    const nonEmpty = (config.history ?? []).filter((h) => h.empty_layer !== true).length;
    if (config.history && nonEmpty > config.rootfs.diff_ids.length) add('image', `image ${id}: ${nonEmpty} non-empty history entries but ${config.rootfs.diff_ids.length} layers`, removeImage);
    const missing = chainIds(config.rootfs.diff_ids).find((c) => !goodLayers.has(c));
    if (missing !== undefined) {
      add('image', `image ${id}: layer ${missing} is ${badLayers.has(missing) ? 'broken' : 'missing'}`, removeImage);
      continue;
    }
    images.set(id, config);
  }
  for (const name of await readdir(layout.metadataDir)) {
    const dir = join(layout.metadataDir, name);
    if (!/^[0-9a-f]{64}$/.test(name) || !(await lstat(join(layout.contentDir, name)).catch(() => undefined))) {
      add('orphan', `imagedb: metadata ${dir} has no image config`, () => rm(dir, { recursive: true, force: true }));
      continue;
    }
    const id = asImageId(`sha256:${name}`);
    for (const f of await readdir(dir)) {
      if (f === 'parent') {
        const p = (await readRaw(join(dir, f))) ?? '';
        if (!/^sha256:[0-9a-f]{64}$/.test(p)) add('image', `image ${id}: parent file ${JSON.stringify(p)} is malformed`, () => rm(join(dir, f), { force: true }));
        else if (!images.has(asImageId(p)) && images.has(id)) add('image', `image ${id}: its parent ${p} is missing`, () => rm(join(dir, f), { force: true }));
        else parents.set(id, asImageId(p));
      } else if (f !== 'lastUpdated') {
        add('orphan', `imagedb: unexpected file ${join(dir, f)}`, () => rm(join(dir, f), { recursive: true, force: true }));
      }
    }
  }

  // --- tags ---
  let repos: Awaited<ReturnType<typeof readRepositories>> = {};
  try {
    repos = await readRepositories(layout.repositoriesJson);
  } catch (e) {
    add('tag', `${layout.repositoriesJson} is not valid JSON: ${(e as Error).message}`, () => writeRepositories(layout.repositoriesJson, {}));
  }
  for (const refs of Object.values(repos)) {
    for (const [ref, id] of Object.entries(refs)) {
      if (images.has(id)) continue;
      add('tag', `tag ${ref} points at ${id}, which is ${/^sha256:[0-9a-f]{64}$/.test(id) && (await lstat(join(layout.contentDir, id.slice(7))).catch(() => undefined)) ? 'broken' : 'missing'}`, async () => {
        const now = await readRepositories(layout.repositoriesJson);
        removeReference(now, parseReference(ref));
        await writeRepositories(layout.repositoriesJson, now);
      });
    }
  }

  // --- orphans: layers no image uses, dirs no layer uses, links to nowhere ---
  const { live } = await store.leases();
  const keep = new Set<ChainId>(live);
  for (const config of images.values()) for (const c of chainIds(config.rootfs.diff_ids)) keep.add(c);
  for (const l of goodLayers.values()) if (mounted.has(l.cacheId)) keep.add(l.chainId);
  for (const l of goodLayers.values()) if (keep.has(l.chainId)) for (let p = l.parent; p && !keep.has(p); p = goodLayers.get(p)?.parent ?? null) keep.add(p);
  for (const l of goodLayers.values()) {
    if (keep.has(l.chainId)) continue;
    add('orphan', `layer ${l.chainId} (${store.overlay.dirOf(l.cacheId)}) is used by no image`, async () => {
      await store.layers.remove(l.chainId);
      await store.overlay.remove(l.cacheId);
    });
  }
  const usedDirs = new Set<string>(mounted);
  for (const l of layers.values()) usedDirs.add(l.cacheId);
  for (const name of await store.overlay.names()) {
    if (usedDirs.has(name)) continue;
    const owner = await store.overlay.incompleteOwner(name);
    if (owner !== undefined && ownerAlive(owner)) continue;
    add('orphan', `overlay2 dir ${store.overlay.dirOf(name)} belongs to no layer${owner !== undefined ? ' (left unfinished by a process that is gone)' : ''}`, () => store.overlay.remove(name));
  }
  for (const lid of await readdir(layout.linksDir)) {
    if (await store.overlay.linkValid(lid)) continue;
    const target = await readlink(join(layout.linksDir, lid)).catch(() => '(not a symlink)');
    add('link', `l/${lid} -> ${target} leads to no layer dir`, () => rm(join(layout.linksDir, lid), { recursive: true, force: true }));
  }
  return { images: images.size, layers: goodLayers.size, findings };
}

export async function fsck(store: ImageStore, opts: FsckOptions = {}): Promise<FsckResult> {
  const report = opts.report ?? (() => undefined);
  return store.locked(async () => {
    let repaired = 0;
    for (let round = 0; ; round++) {
      const result = await checkOnce(store, opts);
      if (!opts.repair || result.findings.length === 0 || round >= 5) {
        for (const f of result.findings) report(`${f.kind}: ${f.message}`);
        return { ...result, repaired };
      }
      let progress = false;
      for (const f of result.findings) {
        if (!f.repair) continue;
        report(`repairing ${f.kind}: ${f.message}`);
        await f.repair();
        repaired++;
        progress = true;
      }
      if (!progress) {
        for (const f of result.findings) report(`${f.kind}: ${f.message}`);
        return { ...result, repaired };
      }
    }
  });
}
