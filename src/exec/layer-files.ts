/** Reads a file of an image from its layer dirs directly (top-most first), honouring whiteouts. */
import { lstat, readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';

async function whiteout(path: string): Promise<boolean> {
  const st = await lstat(path).catch(() => undefined);
  return st !== undefined && st.isCharacterDevice() && st.rdev === 0;
}

/** The file's text as the merged rootfs shows it, or undefined when absent. */
export async function readImageFile(lowerDirs: readonly string[], path: string): Promise<string | undefined> {
  const parts = posix.normalize('/' + path).split('/').filter((p) => p !== '');
  for (const layer of lowerDirs) {
    // A whiteout of the file or of any parent in a higher layer hides the lower ones.
    let prefix = layer;
    for (const part of parts) {
      prefix = join(prefix, part);
      if (await whiteout(prefix)) return undefined;
    }
    const st = await lstat(prefix).catch(() => undefined);
    if (st?.isFile()) return readFile(prefix, 'utf8');
  }
  return undefined;
}
