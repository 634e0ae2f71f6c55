/**
 * The overlay2 driver's directories: `overlay2/<cache-id>/{diff,link,lower,work}`
 * and the short `l/<LID>` symlinks that keep overlay mount options small.
 */
import { randomBytes } from 'node:crypto';
import { readFile, readlink, rm, symlink, unlink, writeFile, chmod, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Layout } from './layout.js';
import { mkdirMode, randomHex, removeTree } from './fsutil.js';
import { ownerAlive, ownerToken } from './lock.js';
import { readOptional } from './fsutil.js';

const MAX_LOWERS = 128;
/**
 * Marks a cache-id dir whose layer is not registered yet; holds the owner token of
 * the process filling it. Removed on commit; swept on open once its owner is gone.
 */
export const INCOMPLETE = '.tsbuild-incomplete';

/** First 26 chars of base32 (A–Z, 2–7) of 17 random bytes, as dockerd makes LIDs. */
export function newLinkId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = randomBytes(17);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]!;
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out.slice(0, 26);
}

export interface LayerDir {
  cacheId: string;
  dir: string;
  diffDir: string;
  linkId: string;
}

export class Overlay2 {
  constructor(private readonly layout: Layout) {}

  dirOf(cacheId: string): string {
    return join(this.layout.overlayDir, cacheId);
  }

  async linkIdOf(cacheId: string): Promise<string> {
    return (await readFile(join(this.dirOf(cacheId), 'link'), 'utf8')).trim();
  }

  /** `l/<LID>` entries of the layer's lowers, nearest first (the `lower` file). */
  async lowersOf(cacheId: string): Promise<string[]> {
    const lower = await readOptional(join(this.dirOf(cacheId), 'lower'));
    return lower ? lower.split(':') : [];
  }

  /**
   * Creates an empty, not yet committed layer dir on top of `parentCacheId`. Call
   * under the store lock: the crash sweep treats a dir with no marker and no layer
   * as garbage, so the marker is the first thing written, and `link` is written
   * before its `l/` symlink so that remove() always finds the symlink.
   */
  async create(parentCacheId: string | null): Promise<LayerDir> {
    const cacheId = randomHex(32);
    const dir = this.dirOf(cacheId);
    await mkdirMode(dir, 0o710);
    await writeFile(join(dir, INCOMPLETE), ownerToken());
    const diffDir = join(dir, 'diff');
    await mkdirMode(diffDir, 0o755);
    const linkId = newLinkId();
    await writeFile(join(dir, 'link'), linkId, { mode: 0o644 });
    await chmod(join(dir, 'link'), 0o644);
    await symlink(join('..', cacheId, 'diff'), join(this.layout.linksDir, linkId));
    if (parentCacheId !== null) {
      const parentLink = await this.linkIdOf(parentCacheId);
      const lowers = [`l/${parentLink}`, ...(await this.lowersOf(parentCacheId))];
      if (lowers.length > MAX_LOWERS) {
        await this.remove(cacheId);
        throw new Error(`max depth exceeded: a layer chain may have at most ${MAX_LOWERS} layers`);
      }
      await writeFile(join(dir, 'lower'), lowers.join(':'), { mode: 0o644 });
      await chmod(join(dir, 'lower'), 0o644);
      await mkdirMode(join(dir, 'work'), 0o700);
      await writeFile(join(this.dirOf(parentCacheId), 'committed'), '', { mode: 0o600 });
    }
    return { cacheId, dir, diffDir, linkId };
  }

  /** The layer is registered: it stops being swept as incomplete. */
  async commit(cacheId: string): Promise<void> {
    await rm(join(this.dirOf(cacheId), INCOMPLETE), { force: true });
  }

  async remove(cacheId: string): Promise<void> {
    const linkId = await readOptional(join(this.dirOf(cacheId), 'link'));
    if (linkId) await unlink(join(this.layout.linksDir, linkId.trim())).catch(() => undefined);
    await removeTree(this.dirOf(cacheId));
  }

  /** Every cache-id dir (not `l`). */
  async names(): Promise<string[]> {
    return (await readdir(this.layout.overlayDir)).filter((n) => n !== 'l');
  }

  /** The owner token in a dir's incomplete marker; undefined when the dir is committed (or gone). */
  async incompleteOwner(cacheId: string): Promise<string | undefined> {
    return readOptional(join(this.dirOf(cacheId), INCOMPLETE));
  }

  /**
   * The crash sweep (under the store lock): a dir a registered layer (or a dockerd
   * container) uses is kept, and committed if a crash hit between registering and
   * committing; any other dir is removed unless a live process is still filling it.
   * Then `l/` entries that lead nowhere, or to a dir whose `link` names another LID,
   * are removed. Returns the removed dirs.
   */
  async sweep(used: Set<string>): Promise<string[]> {
    const swept: string[] = [];
    for (const name of await this.names()) {
      const owner = await this.incompleteOwner(name);
      if (used.has(name)) {
        if (owner !== undefined) await this.commit(name);
        continue;
      }
      if (owner !== undefined && ownerAlive(owner)) continue;
      await this.remove(name);
      swept.push(name);
    }
    for (const lid of await readdir(this.layout.linksDir)) {
      if (!(await this.linkValid(lid))) await unlink(join(this.layout.linksDir, lid)).catch(() => undefined);
    }
    return swept;
  }

  /** `l/<lid>` is a symlink to `../<cache-id>/diff` of an existing dir whose `link` is `lid`. */
  async linkValid(lid: string): Promise<boolean> {
    let target: string;
    try {
      target = await readlink(join(this.layout.linksDir, lid));
    } catch {
      return false;
    }
    const m = /^\.\.\/([^/]+)\/diff$/.exec(target);
    if (!m) return false;
    return (await readOptional(join(this.dirOf(m[1]!), 'link')))?.trim() === lid;
  }
}
