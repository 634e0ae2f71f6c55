/**
 * Which Dockerfile lines made each step image, recorded at build time under
 * `<root>/tsbuild-meta/steps/<image-id>.json` (dockerd ignores the directory),
 * so `layers` and `analyze` can name lines without being given the Dockerfile.
 */
import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hexOf, type ImageId } from '../image/digest.js';
import { writeFileAtomic } from './fsutil.js';

export interface RecordedSource {
  file: string;
  line: number;
  endLine: number;
  text: string;
}

const dirOf = (root: string) => join(root, 'tsbuild-meta', 'steps');

export async function recordStepSource(root: string, id: ImageId, source: RecordedSource): Promise<void> {
  await mkdir(dirOf(root), { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(dirOf(root), `${hexOf(id)}.json`), JSON.stringify(source), 0o600);
}

export async function readStepSource(root: string, id: ImageId): Promise<RecordedSource | undefined> {
  try {
    return JSON.parse(await readFile(join(dirOf(root), `${hexOf(id)}.json`), 'utf8')) as RecordedSource;
  } catch {
    return undefined;
  }
}
