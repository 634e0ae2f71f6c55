/**
 * The layer size dockerd records in layerdb (`size`): moby's pkg/directory.Size over the layer's diff
 * dir — the sum of st_size of every non-directory with a non-zero size (regular files, and symlinks by
 * their target length), each inode counted once (hardlinks), whiteout devices 0. STORE-FORMAT.md §1.
 */
import { lstat, readdir } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';

/** Counts sizes of inodes not seen before. */
export class SizeCounter {
  private readonly seen = new Set<string>();
  total = 0;

  add(st: BigIntStats): void {
    if (st.isDirectory() || st.size === 0n) return;
    const key = `${st.dev}:${st.ino}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.total += Number(st.size);
  }
}

/** The §1 size of a diff directory (the root itself is not counted; symlinks are not followed). */
export async function diffSize(dir: string): Promise<number> {
  const counter = new SizeCounter();
  const walk = async (d: Buffer): Promise<void> => {
    let names: Buffer[];
    try {
      names = await readdir(d, { encoding: 'buffer' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // vanished while walking
      throw e;
    }
    for (const n of names) {
      const p = Buffer.concat([d, Buffer.from('/'), n]);
      let st: BigIntStats;
      try {
        st = await lstat(p, { bigint: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      counter.add(st);
      if (st.isDirectory()) await walk(p);
    }
  };
  const root = Buffer.from(dir, 'utf8');
  await lstat(root); // a missing dir is an error, as in moby
  await walk(root);
  return counter.total;
}
