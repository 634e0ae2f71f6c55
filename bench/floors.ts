/**
 * What the disk, the kernel and sha256 allow for the same work, measured in the
 * same run: the RUN command alone in a chroot of the busybox rootfs (and that
 * plus `tar -c | sha256` of the rootfs it leaves: a builder must also hash
 * what the RUN wrote, 0.4 s per 512 MiB at this machine's 1.2 GB/s), and
 * `tar -c | sha256` of the bytes a COPY reads (HASHER: the fastest sha256 at hand).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

/**
 * The fastest sha256 at hand: coreutils' sha256sum has no SHA-NI code (≈ 0.2 GB/s here, against
 * OpenSSL's 1.2 GB/s, which Node's crypto uses too), so a floor timed with it would be loose.
 */
export const HASHER = spawnSync('openssl', ['version']).status === 0 ? 'openssl dgst -sha256' : 'sha256sum';

function timed(cmd: string, args: string[]): number {
  const t0 = performance.now();
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  return performance.now() - t0;
}

/**
 * `sh -c CMD` chrooted into a fresh copy of the base rootfs (with /dev/urandom, /dev/null), `runs`
 * times; `run` is the command alone, `runAndHash` adds `tar -c | <HASHER>` of the rootfs after it.
 */
export function runFloor(baseTar: Buffer, cmd: string, work: string, runs: number): { run: number[]; runAndHash: number[] } {
  const out = { run: [] as number[], runAndHash: [] as number[] };
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
      const run = timed('chroot', [root, '/bin/sh', '-c', cmd]);
      out.run.push(run);
      out.runAndHash.push(run + timed('sh', ['-c', `tar -c -C "$1" . | ${HASHER} >/dev/null`, 'sh', root]));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  return out;
}

/** `tar -c DIR | <HASHER>`, `runs` times (the page cache is warm for every builder alike). */
export function copyFloor(context: string, dir: string, runs: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) out.push(timed('sh', ['-c', `tar -c -C "$1" "$2" | ${HASHER} >/dev/null`, 'sh', context, dir]));
  return out;
}
