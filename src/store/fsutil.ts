/** Small filesystem helpers the store builds on: exact modes, atomic writes. */
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * rm -rf that copes with trees deeper than PATH_MAX (a hostile ADD can make one): Node's rm
 * walks full paths (ENAMETOOLONG) and recurses on the stack; coreutils rm walks with openat.
 * It never crosses into another mounted filesystem.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENAMETOOLONG' && !(e instanceof RangeError)) throw e;
    await new Promise<void>((resolve, reject) =>
      execFile('rm', ['-rf', '--one-file-system', '--', path], (err, _out, stderr) => (err ? reject(new Error(`rm -rf ${path}: ${String(stderr).trim() || err.message}`, { cause: e })) : resolve())),
    );
  }
}

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** mkdir -p, then the exact mode on the last component (umask would otherwise trim it). */
export async function mkdirMode(path: string, mode: number): Promise<void> {
  await mkdir(path, { recursive: true, mode });
  await chmod(path, mode);
}

/** Writes to a temp name beside the target, fsyncs, sets the mode, renames into place. */
export async function writeFileAtomic(path: string, data: Buffer | string, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.tmp-${randomHex(8)}-${pathBase(path)}`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

function pathBase(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Names of leftovers from writeFileAtomic, for clean-up after a crash. */
export function isAtomicTemp(name: string): boolean {
  return name.startsWith('.tmp-');
}

/** A file's text, or undefined when it does not exist. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    // Synchronous: these are store metadata files of a few bytes, read by the hundred when a
    // build walks its cache, and a thread-pool round trip each costs ten times the read.
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
