/**
 * A stat-keyed cache of context files' tarsums, so a build whose context did not
 * change reads no file contents (like git's index or BuildKit's content cache).
 *
 * One file per context directory and mode style under the store,
 * `<root>/tsbuild-meta/hash-cache/<sha256(dir, style)>.json` (dockerd ignores the
 * directory), holding [rel, key, sum] triples. An entry is valid while the file's
 * dev, inode, size, mtime and ctime (nanoseconds) and the header fields the sum
 * covers are unchanged: a write changes mtime, a chmod/chown/link/xattr change
 * changes ctime, a replacement changes the inode. Files changed in the last two
 * seconds are not recorded, so a write landing in the same timestamp tick after
 * the hash cannot hide (git's "racily clean" rule).
 * The file is replaced atomically (temp + rename); it is only a cache, so it is
 * not fsynced and a damaged one is ignored.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModeStyle } from './hash.js';

/** What makes a cached sum stale: the stat signature and the tar header fields besides the name. */
export interface CacheStamp {
  /** `dev:ino:size:mtimeNs:ctimeNs` */
  sig: string;
  /** max(mtime, ctime) in ms: entries changed too recently are not recorded. */
  changedMs: number;
}

const RACY_MS = 2000;
/** Entries kept at most (old ones that this build did not see are dropped first). */
const MAX_ENTRIES = 2_000_000;

export function hashCacheFile(root: string, contextDir: string, style: ModeStyle): string {
  const id = createHash('sha256').update(`${contextDir}\0${style}`).digest('hex');
  return join(root, 'tsbuild-meta', 'hash-cache', `${id}.json`);
}

export class HashCache {
  private readonly old: Map<string, [string, string]>;
  private readonly seen = new Map<string, [string, string]>();
  private dirty = false;
  hits = 0;
  misses = 0;

  private constructor(
    readonly file: string | undefined,
    entries: Map<string, [string, string]>,
    private readonly racyMs: number,
  ) {
    this.old = entries;
  }

  /** An empty cache that is never saved. */
  static memory(opts: { racyMs?: number } = {}): HashCache {
    return new HashCache(undefined, new Map(), opts.racyMs ?? RACY_MS);
  }

  /** The cache in `file`; a missing or unreadable file is an empty cache. `racyMs`: for tests. */
  static async load(file: string, opts: { racyMs?: number } = {}): Promise<HashCache> {
    const entries = new Map<string, [string, string]>();
    try {
      const data = JSON.parse(await readFile(file, 'utf8')) as unknown;
      if (Array.isArray(data)) {
        for (const t of data) {
          if (Array.isArray(t) && t.length === 3 && typeof t[0] === 'string' && typeof t[1] === 'string' && typeof t[2] === 'string' && /^[0-9a-f]{64}$/.test(t[2])) entries.set(t[0], [t[1], t[2]]);
        }
      }
    } catch {
      // No cache yet, or a damaged one: start empty.
    }
    return new HashCache(file, entries, opts.racyMs ?? RACY_MS);
  }

  /** Whether get(rel, key) would hit (counted as neither). */
  has(rel: string, key: string): boolean {
    return (this.seen.get(rel) ?? this.old.get(rel))?.[0] === key;
  }

  /** The cached sum of `rel` when its key still matches. */
  get(rel: string, key: string): string | undefined {
    const e = this.seen.get(rel) ?? this.old.get(rel);
    if (e !== undefined && e[0] === key) {
      this.hits++;
      if (!this.seen.has(rel)) this.seen.set(rel, e);
      return e[1];
    }
    this.misses++;
    return undefined;
  }

  set(rel: string, key: string, sum: string, stamp: CacheStamp, now = Date.now()): void {
    if (now - stamp.changedMs < this.racyMs) return;
    this.seen.set(rel, [key, sum]);
    this.dirty = true;
  }

  /** Writes the cache when something new was recorded. */
  async save(): Promise<void> {
    if (this.file === undefined || !this.dirty) return;
    const out: Array<[string, string, string]> = [];
    for (const [rel, [key, sum]] of this.seen) out.push([rel, key, sum]);
    for (const [rel, [key, sum]] of this.old) {
      if (out.length >= MAX_ENTRIES) break;
      if (!this.seen.has(rel)) out.push([rel, key, sum]);
    }
    await mkdir(join(this.file, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      await writeFile(tmp, JSON.stringify(out), { mode: 0o600 });
      await rename(tmp, this.file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    this.dirty = false;
  }
}

/** The cache key of a context entry: its stat signature plus every tar header field besides the name. */
export function cacheKey(stamp: CacheStamp, e: { type: string; mode: number; linkTarget?: string; hardlinkTo?: string; devMajor: number; devMinor: number; capability?: Buffer }): string {
  return `${stamp.sig}|${e.type}|${e.mode}|${e.devMajor},${e.devMinor}|${e.hardlinkTo ?? ''}|${e.linkTarget ?? ''}|${e.capability?.toString('hex') ?? ''}`;
}
