/**
 * Plain-fd file reads for the hot paths (layer tars, context hashing): promise
 * wrappers of the callback API, which skip the FileHandle object (and its
 * close-on-GC bookkeeping) that fs/promises creates per open.
 */
import { close, fstat, open, read, type BigIntStats } from 'node:fs';

export function openFd(path: string | Buffer, flags: number): Promise<number> {
  return new Promise((resolve, reject) => open(path, flags, (err, fd) => (err ? reject(err) : resolve(fd))));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => close(fd, (err) => (err ? reject(err) : resolve())));
}

export function fstatFd(fd: number): Promise<BigIntStats> {
  return new Promise((resolve, reject) => fstat(fd, { bigint: true }, (err, st) => (err ? reject(err) : resolve(st))));
}

/** One read(2) at the current position; resolves the byte count (0 at end of file). */
export function readFd(fd: number, buf: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, offset, length, null, (err, n) => (err ? reject(err) : resolve(n))));
}
