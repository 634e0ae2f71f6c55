/**
 * The overlay2 driver's directories: `overlay2/<cache-id>/{diff,link,lower,work}`
 * and the short `l/<LID>` symlinks that keep overlay mount options small.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm, symlink, unlink, writeFile, chmod, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Layout } from './layout.js';
import { mkdirMode, randomHex } from './fsutil.js';

const MAX_LOWERS = 128;
/** Marks a cache-id dir whose layer is not registered yet; removed on commit, swept on open. */
const INCOMPLETE = '.tsbuild-incomplete';

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

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
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

  /** Creates an empty, not yet committed layer dir on top of `parentCacheId`. */
  async create(parentCacheId: string | null): Promise<LayerDir> {
    const cacheId = randomHex(32);
    const dir = this.dirOf(cacheId);
    await mkdirMode(dir, 0o710);
    await writeFile(join(dir, INCOMPLETE), '');
    const diffDir = join(dir, 'diff');
    await mkdirMode(diffDir, 0o755);
    const linkId = newLinkId();
    await symlink(join('..', cacheId, 'diff'), join(this.layout.linksDir, linkId));
    await writeFile(join(dir, 'link'), linkId, { mode: 0o644 });
    await chmod(join(dir, 'link'), 0o644);
    if (parentCacheId !== null) {
      const parentLink = await this.linkIdOf(parentCacheId);
      const lowers = [`l/${parentLink}`, ...(await this.lowersOf(parentCacheId))];
      if (lowers.length > MAX_LOWERS) throw new Error(`max depth exceeded: a layer chain may have at most ${MAX_LOWERS} layers`);
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
    await rm(this.dirOf(cacheId), { recursive: true, force: true });
  }

  /** Removes dirs left by a crash between create and commit. */
  async sweepIncomplete(): Promise<string[]> {
    const swept: string[] = [];
    for (const name of await readdir(this.layout.overlayDir)) {
      if (name === 'l') continue;
      if ((await readOptional(join(this.dirOf(name), INCOMPLETE))) !== undefined) {
        await this.remove(name);
        swept.push(name);
      }
    }
    return swept;
  }
}
