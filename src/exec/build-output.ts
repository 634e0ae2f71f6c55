/**
 * `--output`: the built image written out with the docker-save code — an OCI
 * image layout (tar, or a directory) or a legacy docker-save tar. Files and
 * directories are written under a temp name beside the destination and renamed
 * at the end, so a failure leaves nothing half-written.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { TsbuildError } from '../errors.js';
import type { ImageId } from '../image/digest.js';
import { extractArchive } from '../store/archive.js';
import { saveImages } from '../store/docker-save.js';
import type { ImageStore } from '../store/store.js';
import type { OutputSpec } from './build-specs.js';

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/** A temp sibling of `dest` (same filesystem, so the final rename is atomic). */
function tempBeside(dest: string): string {
  return join(dirname(dest), `.${basename(dest)}.tsbuild-${randomBytes(4).toString('hex')}`);
}

/** Writes image `id` (named by `tags`, when there are any) as `spec` says; `stdout` takes `dest=-`. */
export async function writeOutput(store: ImageStore, id: ImageId, tags: readonly string[], spec: OutputSpec, stdout: Writable): Promise<void> {
  const names = tags.length > 0 ? [...tags] : [id];
  const format = spec.type === 'oci' ? 'oci' : 'docker';
  if (spec.dest === '-') {
    await saveImages(store, names, stdout, format);
    return;
  }
  const dest = resolve(spec.dest);
  const asDir = spec.type === 'oci' && (spec.tar === false || (spec.tar === undefined && (await isDir(dest))));
  if (asDir) {
    if (await isDir(dest)) {
      if ((await readdir(dest)).length > 0) throw new TsbuildError('USAGE', `--output ${spec.dest}: the directory is not empty`);
    } else if (await stat(dest).catch(() => undefined)) {
      throw new TsbuildError('USAGE', `--output ${spec.dest}: exists and is not a directory (tar=false writes a directory)`);
    }
    await mkdir(dirname(dest), { recursive: true });
    const tmp = tempBeside(dest);
    await mkdir(tmp, { mode: 0o755 });
    try {
      const pipe = new PassThrough();
      const extracting = extractArchive(pipe, tmp);
      extracting.catch(() => undefined);
      try {
        await saveImages(store, names, pipe, format); // ends the stream
      } catch (e) {
        pipe.destroy();
        throw e;
      }
      await extracting;
      await rmdir(dest).catch(() => undefined);
      await rename(tmp, dest);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    return;
  }
  if (await isDir(dest)) throw new TsbuildError('USAGE', `--output ${spec.dest}: is a directory; give a file name${spec.type === 'oci' ? ' (or tar=false for a layout directory)' : ''}`);
  await mkdir(dirname(dest), { recursive: true });
  const tmp = tempBeside(dest);
  const out = createWriteStream(tmp, { mode: 0o644 });
  try {
    await saveImages(store, names, out, format); // ends the stream
    await finished(out);
    await rename(tmp, dest);
  } catch (e) {
    out.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
}
