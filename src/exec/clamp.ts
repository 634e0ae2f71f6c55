/**
 * SOURCE_DATE_EPOCH for layers: every entry of a new layer's diff dir newer than
 * the epoch gets the epoch as its mtime (BuildKit's rewrite-timestamp), so the
 * layer tar — and the image ID — no longer depend on when the build ran.
 */
import { lstat, lutimes, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export async function clampMtimes(dir: string, epochSeconds: number): Promise<number> {
  let changed = 0;
  const walk = async (path: string): Promise<void> => {
    const entries = await readdir(path, { withFileTypes: true });
    for (const e of entries) {
      const child = join(path, e.name);
      if (e.isDirectory()) await walk(child);
      const st = await lstat(child);
      if (st.mtimeMs / 1000 > epochSeconds) {
        await lutimes(child, epochSeconds, epochSeconds);
        changed++;
      }
    }
  };
  await walk(dir);
  // Children first, then the dir: touching a child never moves the parent's mtime back up.
  return changed;
}

/** The newest mtime (whole seconds) under a context dir, or 0 when it is empty: `--reproducible`'s epoch. */
export async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  const walk = async (path: string): Promise<void> => {
    for (const e of await readdir(path, { withFileTypes: true })) {
      const child = join(path, e.name);
      const st = await lstat(child);
      newest = Math.max(newest, Math.floor(st.mtimeMs / 1000));
      if (e.isDirectory()) await walk(child);
    }
  };
  await walk(dir);
  return newest;
}
