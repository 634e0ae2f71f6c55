/**
 * Layer decompression for extraction. gzip and plain tars go to applyLayer as
 * they are (it sniffs gzip itself); zstd is not in Node 20's zlib, so a zstd
 * stream is piped through `zstd -dc` (Debian package zstd).
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from './errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

export interface Decompressed {
  stream: Readable;
  /** Resolves when the decompressor exited cleanly; rejects with its error otherwise. */
  done: Promise<void>;
}

/** `input` as applyLayer can read it: zstd through `zstd -dc`, anything else unchanged. */
export function decompressForApply(input: Readable, compression: Compression): Decompressed {
  if (compression !== 'zstd') return { stream: input, done: Promise.resolve() };
  const child = spawn('zstd', ['-dc', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const err: Buffer[] = [];
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const feeding = pipeline(input, child.stdin).catch(() => undefined);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => {
      const msg = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'zstd-compressed layers need the zstd program (apt-get install zstd)' : `zstd: ${e.message}`;
      const error = new RegistryError('REGISTRY_MANIFEST', msg, { cause: e });
      child.stdout.destroy(error);
      reject(error);
    });
    child.on('close', (code) => {
      void feeding.then(() => {
        if (code === 0) resolve();
        else reject(new RegistryError('REGISTRY_DIGEST', `corrupt zstd stream: ${Buffer.concat(err).toString('utf8').trim() || `zstd exited with ${code}`}`));
      });
    });
  });
  done.catch(() => undefined);
  return { stream: child.stdout, done };
}
