/** A text file of an image, read from its layer dirs (whiteouts, opaque dirs and symlinks honoured). */
import { readLayeredFile } from '../snapshot/overlay.js';

/** The file's text as the merged rootfs shows it, or undefined when absent. */
export async function readImageText(lowerDirs: readonly string[], path: string): Promise<string | undefined> {
  return (await readLayeredFile(lowerDirs, path))?.toString('utf8');
}
