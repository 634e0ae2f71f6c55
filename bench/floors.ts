/**
 * What the disk, the kernel and sha256 allow for the same work, measured in the
 * same run: the RUN command alone in a chroot of the busybox rootfs, and
 * `tar -c | sha256sum` of the bytes a COPY reads.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

function timed(cmd: string, args: string[]): number {
  const t0 = performance.now();
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  return performance.now() - t0;
}

/** `sh -c CMD` chrooted into a fresh copy of the base rootfs (with /dev/urandom, /dev/null), `runs` times. */
export function runFloor(baseTar: Buffer, cmd: string, work: string, runs: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const root = join(work, `floor-rootfs-${i}`);
    mkdirSync(root, { recursive: true });
    const tar = join(work, 'floor-base.tar');
    writeFileSync(tar, baseTar);
    execFileSync('tar', ['-x', '-f', tar, '-C', root]);
    execFileSync('mknod', ['-m', '666', join(root, 'dev/urandom'), 'c', '1', '9']);
    execFileSync('mknod', ['-m', '666', join(root, 'dev/null'), 'c', '1', '3']);
    execFileSync('sync');
    try {
      out.push(timed('chroot', [root, '/bin/sh', '-c', cmd]));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  return out;
}

/** `tar -c DIR | sha256sum`, `runs` times (the page cache is warm for every builder alike). */
export function copyFloor(context: string, dir: string, runs: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) out.push(timed('sh', ['-c', 'tar -c -C "$1" "$2" | sha256sum >/dev/null', 'sh', context, dir]));
  return out;
}
