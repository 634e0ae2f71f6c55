/**
 * Which Dockerfile lines made each step image, recorded at build time under
 * `<root>/tsbuild-meta/steps/<image-id>.json` (dockerd ignores the directory),
 * so `layers` and `analyze` can name lines without being given the Dockerfile.
 */
import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hexOf, type ImageId } from '../image/digest.js';
import { readOptional, writeFileAtomic } from './fsutil.js';

export interface RecordedSource {
  file: string;
  line: number;
  endLine: number;
  text: string;
}

const dirOf = (root: string) => join(root, 'tsbuild-meta', 'steps');

export async function recordStepSource(root: string, id: ImageId, source: RecordedSource): Promise<void> {
  const file = join(dirOf(root), `${hexOf(id)}.json`);
  const text = JSON.stringify(source);
  // A cache hit records the same lines again: skip the (fsynced) rewrite then.
  if ((await readOptional(file).catch(() => undefined)) === text) return;
  await mkdir(dirOf(root), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, text, 0o600);
}

export async function readStepSource(root: string, id: ImageId): Promise<RecordedSource | undefined> {
  try {
    return JSON.parse(await readFile(join(dirOf(root), `${hexOf(id)}.json`), 'utf8')) as RecordedSource;
  } catch {
    return undefined;
  }
}
