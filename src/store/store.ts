/**
 * The image store: a Docker 20.10 overlay2 data root that tsbuild writes and a
 * real dockerd adopts. Every write is atomic and serialised by the root's lock;
 * leftovers of a crash are swept when the store is opened.
 */
import { readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TsbuildError } from '../errors.js';
import { asChainId, asImageId, chainIdOf, chainIds, hexOf, isDigest, sha256Digest, type ChainId, type DiffId, type ImageId } from '../image/digest.js';
import type { ImageConfig } from '../image/image.js';
import { rfc3339Nano } from '../image/image.js';
import { familiarString, parseReference, withDefaultTag, type Reference } from '../image/reference.js';
import { ImageDb, type StoredImage } from './imagedb.js';
import { LayerDb, type LayerRecord } from './layerdb.js';
import { Layout } from './layout.js';
import { randomHex, removeTree } from './fsutil.js';
import { isLockLeftover, ownerAlive, ownerToken, withLock } from './lock.js';
import { Overlay2 } from './overlay2.js';
import { deadProcessTmpDirs, sweepProcessTmpDirs } from './process-tmp.js';
import { addReference, readRepositories, referencesTo, removeReference, writeRepositories } from './repositories.js';

export interface FilledLayer {
  diffId: DiffId;
  tarSplit: Buffer;
  size: number;
}

/** `<root>/tsbuild-tmp/proc-<owner token>.<random>`: a scratch dir the crash sweep removes once its owner is dead. */
export function processScratchPath(root: string): string {
  return join(root, 'tsbuild-tmp', `proc-${ownerToken()}.${randomHex(4)}`);
}

/** Session dirs of the stores this process opened (ImageStore.beginSession). */
const openSessions = new Set<string>();
let sessionExitHook = false;

export class NoSuchImageError extends TsbuildError {
  constructor(ref: string) {
    super('NO_IMAGE', `No such image: ${ref}`);
  }
}

export interface ImageSummary {
  image: StoredImage;
  refs: string[];
  size: number;
}

export class ImageStore {
  readonly layers: LayerDb;
  readonly images: ImageDb;
  readonly overlay: Overlay2;

  private constructor(readonly layout: Layout) {
    this.layers = new LayerDb(layout);
    this.images = new ImageDb(layout);
    this.overlay = new Overlay2(layout);
  }

  get root(): string {
    return this.layout.root;
  }

  /**
   * Opens (creating) the store at `root`. The crash sweep runs only when a crash can have
   * left something: a process that opened the store and is gone without ending its session
   * (below), or a scratch dir or lock file of a dead one. A fully cached build then reads
   * three dirs instead of every layer's files (≈ 35 ms on a small store, growing with it).
   */
  static async open(root: string): Promise<ImageStore> {
    const store = new ImageStore(new Layout(root));
    await store.layout.ensure();
    if (await store.crashEvidence()) await store.locked(() => store.sweep());
    await store.beginSession();
    return store;
  }

  /**
   * Whether a tsbuild died with this store open: its session dir (`tsbuild-leases/<token>`,
   * which also holds its leases) outlived it, or its scratch dir or lock token did, or a temp
   * dir of its outside the store (a rootfs worker can outlive the sweep that removed its
   * parent's session: it dies by parent-death signal, a moment later). A store no tsbuild with
   * sessions opened yet (no `tsbuild-leases`) counts as one.
   */
  async crashEvidence(): Promise<boolean> {
    const sessions = await readdir(this.leaseRoot).catch(() => undefined);
    if (sessions === undefined || sessions.some((token) => !ownerAlive(token))) return true;
    return (await this.deadScratchDirs()).length > 0 || (await this.deadLockLeftovers()).length > 0 || deadProcessTmpDirs().length > 0;
  }

  /** `tsbuild-tmp/proc-<token>.<random>` dirs whose owner is gone. */
  private async deadScratchDirs(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await readdir(this.tmpRoot).catch(() => [] as string[])) {
      const m = /^proc-(\d+-\d+)\.[0-9a-f]+$/.exec(name);
      if (m && !ownerAlive(m[1]!)) out.push(join(this.tmpRoot, name));
    }
    return out;
  }

  /** The lock's temp token files (not the breaker) whose owner is gone. */
  private async deadLockLeftovers(): Promise<string[]> {
    const lockName = this.layout.lockFile.slice(this.layout.lockFile.lastIndexOf('/') + 1);
    const out: string[] = [];
    for (const name of await readdir(this.root)) {
      if (!isLockLeftover(name, lockName) || name.endsWith('.break')) continue;
      if (!ownerAlive(name.slice(lockName.length + 1).split('.')[0] ?? '')) out.push(join(this.root, name));
    }
    return out;
  }

  /**
   * This process's session: its lease dir, made now and removed at a normal exit when no
   * lease is left in it. A kill -9 leaves it, so the next open sweeps.
   */
  private async beginSession(): Promise<void> {
    const dir = join(this.leaseRoot, ownerToken());
    await mkdir(dir, { recursive: true, mode: 0o700 });
    openSessions.add(dir);
    if (!sessionExitHook) {
      sessionExitHook = true;
      process.once('exit', () => {
        for (const d of openSessions) {
          try {
            rmdirSync(d);
          } catch {
            // Leases left (a build that failed after registering layers): the next open sweeps them.
          }
        }
      });
    }
  }

  /** `<root>/tsbuild-tmp`: scratch space on the store's filesystem (dockerd ignores it). */
  get tmpRoot(): string {
    return join(this.root, 'tsbuild-tmp');
  }

  async scratchDir(): Promise<string> {
    await mkdir(this.tmpRoot, { recursive: true, mode: 0o700 });
    return this.tmpRoot;
  }

  /**
   * A scratch dir owned by this process, `<root>/tsbuild-tmp/proc-<owner token>.<random>`
   * (a build's RUN and COPY temp dirs, load, pull, push, run, verify): the caller removes
   * it when done; the crash sweep removes those of dead processes (first killing what
   * still runs there). Use it rather than scratchDir() for anything a kill -9 could leave.
   */
  async processScratchDir(): Promise<string> {
    const dir = processScratchPath(this.root);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** `<root>/tsbuild-leases/<owner token>`: see lease(). */
  private get leaseRoot(): string {
    return join(this.root, 'tsbuild-leases');
  }

  /**
   * Records that this process registered or reused `chainId` and has not yet stored
   * the image that uses it: rmi/prune keep the layer while we live, and the crash
   * sweep collects it (if still unused) once we are gone. putImage ends the leases
   * on its layers. Call under the lock, before the layer becomes visible. (Two
   * builds in one process share a lease: the first putImage ends it for both.)
   */
  private async lease(chainId: ChainId): Promise<void> {
    const dir = join(this.leaseRoot, ownerToken());
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, hexOf(chainId)), '');
  }

  /**
   * Chains leased by live or dead processes; the lease dirs and scratch dirs of
   * dead processes.
   */
  async leases(): Promise<{ live: Set<ChainId>; dead: Set<ChainId>; deadDirs: string[] }> {
    const live = new Set<ChainId>();
    const dead = new Set<ChainId>();
    const deadDirs: string[] = [];
    for (const token of await readdir(this.leaseRoot).catch(() => [] as string[])) {
      const alive = ownerAlive(token);
      if (!alive) deadDirs.push(join(this.leaseRoot, token));
      for (const hex of await readdir(join(this.leaseRoot, token)).catch(() => [] as string[])) {
        if (/^[0-9a-f]{64}$/.test(hex)) (alive ? live : dead).add(asChainId(`sha256:${hex}`));
      }
    }
    deadDirs.push(...(await this.deadScratchDirs()));
    return { live, dead, deadDirs };
  }

  /** Layer chains some image uses (each chain of its rootfs). */
  async usedChains(): Promise<Set<ChainId>> {
    const used = new Set<ChainId>();
    for (const id of await this.images.ids()) {
      const image = await this.images.get(id);
      if (!image) continue;
      for (const c of chainIds(image.config.rootfs.diff_ids)) used.add(c);
    }
    return used;
  }

  /**
   * The crash sweep, under the lock (run by open()): whatever an interrupted
   * writer can leave is either finished or removed, so the store is one a dockerd
   * and fsck accept:
   * 1. processes still running out of a dead process's scratch dir (a RUN whose
   *    tsbuild was killed) are killed;
   * 2. half-written layerdb dirs, image temps and config-less metadata go;
   * 3. overlay2 dirs no layer uses and no live process fills go; a used dir still
   *    marked incomplete (killed between register and commit) is committed;
   *    `l/` links that lead nowhere go;
   * 4. layers a dead process leased that no image uses go (killed between the layer
   *    and its image), with their dirs;
   * 5. the dead processes' lease and scratch dirs and lock temp files go.
   */
  async sweep(): Promise<void> {
    const { live, dead, deadDirs } = await this.leases();
    const orphaned = [...deadDirs];
    for (const name of await this.overlay.names()) {
      const owner = await this.overlay.incompleteOwner(name);
      if (owner !== undefined && !ownerAlive(owner)) orphaned.push(this.overlay.dirOf(name));
    }
    if (orphaned.length > 0) await killProcessesUsing(orphaned);
    // Temp dirs outside the store (rootfs workers in /tmp, secrets in /dev/shm) of dead tsbuilds.
    await sweepProcessTmpDirs(killProcessesUsing);
    await this.layers.sweepTmp();
    await this.images.sweepTmp();
    if (dead.size > 0) {
      const used = await this.usedChains();
      for (const c of live) used.add(c);
      await this.collectLayers([...dead], used);
    }
    const layers = await this.layers.list();
    const usedDirs = await this.layers.mountCacheIds();
    for (const l of layers) usedDirs.add(l.cacheId);
    await this.overlay.sweep(usedDirs);
    for (const dir of deadDirs) await removeTree(dir);
    for (const file of await this.deadLockLeftovers()) await rm(file, { force: true });
  }

  /** Removes the `candidates` no image uses and no kept layer stacks on (a layer and its dir). */
  private async collectLayers(candidates: ChainId[], used: Set<ChainId>): Promise<ChainId[]> {
    const all = await this.layers.list();
    const mounted = await this.layers.mountCacheIds();
    const keep = new Set<ChainId>(used);
    for (const l of all) if (mounted.has(l.cacheId)) keep.add(l.chainId);
    const byChain = new Map(all.map((l) => [l.chainId, l]));
    for (const l of all) if (keep.has(l.chainId)) for (let p = l.parent; p && !keep.has(p); p = byChain.get(p)?.parent ?? null) keep.add(p);
    const removed: ChainId[] = [];
    // Children before parents, so a crash part-way leaves no child without its parent.
    const order = candidates.filter((c) => byChain.has(c) && !keep.has(c)).sort((a, b) => depth(b, byChain) - depth(a, byChain));
    for (const c of order) {
      const layer = byChain.get(c)!;
      await this.layers.remove(c);
      await this.overlay.remove(layer.cacheId);
      removed.push(c);
    }
    return removed;
  }

  locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.layout.lockFile, fn);
  }

  /**
   * Creates a layer on `parent`: `fill` writes the layer's files into the new diff
   * dir and returns its diffID and tar-split. Idempotent: an existing chainID wins
   * and the new dir is dropped. A failing fill leaves nothing behind.
   */
  async putLayer(parent: ChainId | null, fill: (diffDir: string) => Promise<FilledLayer>): Promise<LayerRecord> {
    const record = await this.putLayerIfChanged(parent, fill);
    if (!record) throw new TsbuildError('EMPTY_LAYER', 'the layer was discarded');
    return record;
  }

  /** putLayer, except that a fill returning null (nothing changed) registers nothing and returns null. */
  async putLayerIfChanged(parent: ChainId | null, fill: (diffDir: string) => Promise<FilledLayer | null>): Promise<LayerRecord | null> {
    const parentRecord = parent === null ? undefined : await this.layers.get(parent);
    if (parent !== null && !parentRecord) throw new TsbuildError('NO_LAYER', `parent layer ${parent} does not exist`);
    const dir = await this.locked(() => this.overlay.create(parentRecord?.cacheId ?? null));
    let filled: FilledLayer | null;
    try {
      filled = await fill(dir.diffDir);
    } catch (e) {
      await this.overlay.remove(dir.cacheId);
      throw e;
    }
    if (filled === null) {
      await this.overlay.remove(dir.cacheId);
      return null;
    }
    const layer = filled;
    const chainId = chainIdOf(parent, layer.diffId);
    return this.locked(async () => {
      await this.lease(chainId);
      const existing = await this.layers.get(chainId);
      if (existing) {
        await this.overlay.remove(dir.cacheId);
        return existing;
      }
      if (parent !== null && !(await this.layers.has(parent))) {
        await this.overlay.remove(dir.cacheId);
        throw new TsbuildError('NO_LAYER', `parent layer ${parent} was removed while the layer was made`);
      }
      const record: LayerRecord = { chainId, diffId: layer.diffId, parent, cacheId: dir.cacheId, size: layer.size };
      try {
        await this.layers.put(record, layer.tarSplit);
        await this.overlay.commit(dir.cacheId);
      } catch (e) {
        await this.layers.remove(chainId);
        await this.overlay.remove(dir.cacheId);
        throw e;
      }
      return record;
    });
  }

  /** Stores config bytes as an image; every layer of its rootfs must exist. */
  async putImage(bytes: Buffer, parent: ImageId | null = null): Promise<ImageId> {
    const config = JSON.parse(bytes.toString('utf8')) as ImageConfig;
    const chain = chainIds(config.rootfs?.diff_ids ?? []);
    const top = chain[chain.length - 1];
    if (top !== undefined && !(await this.layers.has(top))) throw new TsbuildError('NO_LAYER', `layer ${top} of the image is not in the store`);
    return this.locked(async () => {
      if (top !== undefined && !(await this.layers.has(top))) throw new TsbuildError('NO_LAYER', `layer ${top} of the image is not in the store`);
      // Metadata first: a crash before the config leaves only metadata, which the sweep removes.
      const id = asImageId(sha256Digest(bytes));
      if (parent !== null) await this.images.setParent(id, parent);
      await this.images.put(bytes);
      // The image holds its layers now: this process's leases on them end.
      for (const c of chain) await rm(join(this.leaseRoot, ownerToken(), hexOf(c)), { force: true });
      return id;
    });
  }

  async tag(reference: string, id: ImageId): Promise<Reference> {
    const ref = withDefaultTag(parseReference(reference));
    if (ref.digest !== undefined && ref.tag === undefined) throw new TsbuildError('USAGE', `refusing to create a tag with a digest reference: ${reference}`);
    await this.images.require(id);
    await this.locked(async () => {
      const repos = await readRepositories(this.layout.repositoriesJson);
      const before = JSON.stringify(repos);
      addReference(repos, ref, id);
      // Re-tagging with the same image (a cached rebuild) leaves the file alone, as dockerd does.
      if (JSON.stringify(repos) !== before) await writeRepositories(this.layout.repositoriesJson, repos);
      await this.images.setLastUpdated(id, rfc3339Nano(new Date()));
    });
    return ref;
  }

  async referencesOf(id: ImageId): Promise<string[]> {
    return referencesTo(await readRepositories(this.layout.repositoriesJson), id);
  }

  /** Docker's lookup order: full ID, then a reference, then a unique short ID. */
  async resolve(refOrId: string): Promise<StoredImage | undefined> {
    const full = /^[0-9a-f]{64}$/.test(refOrId) ? `sha256:${refOrId}` : refOrId;
    if (isDigest(full)) return this.images.get(asImageId(full));
    let ref: Reference | undefined;
    try {
      ref = withDefaultTag(parseReference(refOrId));
    } catch {
      ref = undefined;
    }
    if (ref) {
      const repos = await readRepositories(this.layout.repositoriesJson);
      for (const refs of Object.values(repos)) {
        const id = refs[familiarString(ref)];
        if (id) return this.images.get(id);
      }
    }
    const prefix = refOrId.replace(/^sha256:/, '');
    if (/^[0-9a-f]+$/.test(prefix)) {
      const matches = (await this.images.ids()).filter((id) => id.slice(7).startsWith(prefix));
      if (matches.length > 1) throw new TsbuildError('AMBIGUOUS', `short ID ${prefix} is ambiguous: ${matches.length} images match`);
      if (matches.length === 1) return this.images.get(matches[0]!);
    }
    return undefined;
  }

  async require(refOrId: string): Promise<StoredImage> {
    const image = await this.resolve(refOrId);
    if (!image) throw new NoSuchImageError(refOrId);
    return image;
  }

  /** The image's layers, base first; throws when one is missing. */
  async layerChain(image: StoredImage): Promise<LayerRecord[]> {
    const out: LayerRecord[] = [];
    for (const chainId of chainIds(image.config.rootfs.diff_ids)) {
      const layer = await this.layers.known(chainId);
      if (!layer) throw new TsbuildError('NO_LAYER', `layer ${chainId} of image ${image.id} is missing`);
      out.push(layer);
    }
    return out;
  }

  async imageSize(image: StoredImage): Promise<number> {
    return (await this.layerChain(image)).reduce((n, l) => n + l.size, 0);
  }

  /** Every image dockerd would load, with its references and size. */
  async list(): Promise<ImageSummary[]> {
    const repos = await readRepositories(this.layout.repositoriesJson);
    const out: ImageSummary[] = [];
    for (const id of await this.images.ids()) {
      const image = await this.images.get(id);
      if (!image) continue;
      let size: number;
      try {
        size = await this.imageSize(image);
      } catch {
        continue;
      }
      out.push({ image, refs: referencesTo(repos, id), size });
    }
    return out;
  }

  /** After a failed load or pull: removes the given layers (newest first) that no image uses. */
  async dropLayersNotInUse(created: readonly ChainId[]): Promise<void> {
    const used = new Set<string>();
    for (const s of await this.list()) for (const l of await this.layerChain(s.image).catch(() => [])) used.add(l.chainId);
    for (const chainId of [...created].reverse()) {
      if (used.has(chainId)) continue;
      const layer = await this.layers.get(chainId);
      if (!layer) continue;
      await this.locked(async () => {
        await this.layers.remove(chainId);
        await this.overlay.remove(layer.cacheId);
      });
    }
  }

  /** The diff dirs of an image's layers, top-most first: the lowerdirs of a snapshot on it. */
  async lowerDirs(image: StoredImage | null): Promise<string[]> {
    if (!image) return [];
    return (await this.layerChain(image)).reverse().map((l) => join(this.overlay.dirOf(l.cacheId), 'diff'));
  }

  private async children(): Promise<Map<ImageId, ImageId[]>> {
    const kids = new Map<ImageId, ImageId[]>();
    for (const id of await this.images.ids()) {
      const image = await this.images.get(id);
      if (image?.parent) kids.set(image.parent, [...(kids.get(image.parent) ?? []), id]);
    }
    return kids;
  }

  /**
   * `docker rmi`: untags a reference, or removes an image given by ID. An image
   * left with no tags and no children is deleted with its untagged parents, then
   * layers no image uses any more. Returns Docker's "Untagged:"/"Deleted:" lines.
   */
  async remove(refOrId: string, force = false): Promise<string[]> {
    const image = await this.require(refOrId);
    const lines: string[] = [];
    await this.locked(async () => {
      const repos = await readRepositories(this.layout.repositoriesJson);
      const refs = referencesTo(repos, image.id);
      const byId = image.id.slice(7).startsWith(refOrId.replace(/^sha256:/, ''));
      if (byId) {
        if (refs.length > 1 && !force) throw new TsbuildError('CONFLICT', `conflict: unable to delete ${image.id.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
        for (const r of refs) {
          removeReference(repos, parseReference(r));
          lines.push(`Untagged: ${r}`);
        }
      } else {
        const ref = withDefaultTag(parseReference(refOrId));
        removeReference(repos, ref);
        lines.push(`Untagged: ${familiarString(ref)}`);
      }
      await writeRepositories(this.layout.repositoriesJson, repos);
      lines.push(...(await this.deleteUnreferenced(image.id, repos)));
      lines.push(...(await this.deleteUnusedLayers()));
    });
    return lines;
  }

  /** Deletes `id` and its untagged, childless parents (layers are left to deleteUnusedLayers). */
  private async deleteUnreferenced(start: ImageId, repos: Awaited<ReturnType<typeof readRepositories>>): Promise<string[]> {
    const lines: string[] = [];
    const kids = await this.children();
    let id: ImageId | null = start;
    while (id !== null) {
      if (referencesTo(repos, id).length > 0 || (kids.get(id) ?? []).length > 0) break;
      const image: StoredImage | undefined = await this.images.get(id);
      await this.images.remove(id);
      lines.push(`Deleted: ${id}`);
      const parent: ImageId | null = image?.parent ?? null;
      if (parent) kids.set(parent, (kids.get(parent) ?? []).filter((k) => k !== id));
      id = parent;
    }
    return lines;
  }

  private async deleteUnusedLayers(): Promise<string[]> {
    // Layers other builds registered but have not stored their images for yet.
    const used = new Set<string>((await this.leases()).live);
    for (const id of await this.images.ids()) {
      const image = await this.images.get(id);
      if (!image) continue;
      let parent: ChainId | null = null;
      for (const d of image.config.rootfs.diff_ids) {
        parent = chainIdOf(parent, d);
        used.add(parent);
      }
    }
    const mounted = await this.layers.mountCacheIds();
    const lines: string[] = [];
    const all = await this.layers.list();
    // A layer another kept layer stacks on stays, too.
    for (const l of all) if (used.has(l.chainId) || mounted.has(l.cacheId)) for (let p = l.parent; p; p = all.find((x) => x.chainId === p)?.parent ?? null) used.add(p);
    for (const layer of all) {
      if (used.has(layer.chainId) || mounted.has(layer.cacheId)) continue;
      await this.layers.remove(layer.chainId);
      await this.overlay.remove(layer.cacheId);
      lines.push(`Deleted: ${layer.chainId}`);
    }
    return lines;
  }

  /** `docker image prune`: dangling images (no tag, no child) and what only they used. */
  async prune(): Promise<string[]> {
    return this.locked(async () => {
      const repos = await readRepositories(this.layout.repositoriesJson);
      const kids = await this.children();
      const lines: string[] = [];
      for (const id of await this.images.ids()) {
        if (!(await this.images.get(id))) continue;
        if (referencesTo(repos, id).length === 0 && (kids.get(id) ?? []).length === 0) lines.push(...(await this.deleteUnreferenced(id, repos)));
      }
      lines.push(...(await this.deleteUnusedLayers()));
      return lines;
    });
  }
}

function depth(c: ChainId, byChain: Map<ChainId, LayerRecord>): number {
  let n = 0;
  for (let p = byChain.get(c)?.parent ?? null; p; p = byChain.get(p)?.parent ?? null) n++;
  return n;
}

/**
 * SIGKILLs processes working out of `dir` — a RUN sandbox (its outer `unshare
 * --kill-child` takes the PID namespace with it) or a rootfs worker whose tsbuild
 * died — and waits for them to go, so their dirs can be removed.
 */
export async function killProcessesUsing(dirs: string[]): Promise<number> {
  const needles = dirs.map((d) => Buffer.from(d + '/'));
  const victims: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      // The environment or arguments name the dir: a RUN sandbox, a rootfs worker
      // (TSBUILD_WORKER_DIRS). Not mount tables: a live build's sandbox holds copies of
      // the mounts other builds had when it started, and must not die for them.
      const texts = [readFileSync(`/proc/${name}/environ`), readFileSync(`/proc/${name}/cmdline`)];
      if (needles.some((n) => texts.some((t) => t.includes(n)))) victims.push(Number(name));
    } catch {
      /* gone, or not ours to read */
    }
  }
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (let i = 0; i < 100 && victims.some((pid) => isRunning(pid)); i++) await new Promise((r) => setTimeout(r, 20));
  return victims.length;
}

function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
