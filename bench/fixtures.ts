/**
 * Benchmark fixtures, generated at bench time in a temp dir (never committed).
 * File contents come from a seeded xorshift generator, so every run (and every
 * builder in a run) sees the same bytes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Fixture {
  /** Short name: table rows and results.json keys. */
  name: string;
  /** The build context directory (holds the Dockerfile). */
  context: string;
  /** For the floor measurements. */
  kind: 'seed' | 'copy' | 'run' | 'steps';
  /** copy: the directory COPY reads (relative to the context); run: the RUN command whose floor is timed. */
  copyDir?: string;
  runCommand?: string;
  /** Files and bytes in the context (copy fixtures). */
  files?: number;
  bytes?: number;
}

/** 1 MiB of deterministic pseudo-random bytes; files are slices of it (cheap to write, incompressible). */
function noise(seed: number): Buffer {
  const out = Buffer.allocUnsafe(1 << 20);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out;
}

export const BASE_IMAGE = 'busybox:latest';

export function seedFixture(dir: string): Fixture {
  const context = join(dir, 'seed');
  mkdirSync(context, { recursive: true });
  writeFileSync(join(context, 'Dockerfile'), `FROM ${BASE_IMAGE}\nLABEL name=test-image\nRUN echo hello > /hello.txt\nRUN dd if=/dev/zero of=/blob bs=1M count=8 2>/dev/null\nCOPY startService.sh /\nCMD ["/bin/sh", "/startService.sh"]\n`);
  writeFileSync(join(context, 'startService.sh'), 'echo started\n');
  return { name: 'seed', context, kind: 'seed' };
}

/**
 * Not timed: built before every cold build by each builder, without its cache, after the page
 * cache is dropped (builds.ts settleDisk), so that every builder's code is read back in.
 */
export function warmUpContext(dir: string): string {
  const context = join(dir, 'warm-up');
  mkdirSync(context, { recursive: true });
  writeFileSync(join(context, 'Dockerfile'), `FROM ${BASE_IMAGE}\nLABEL warm=up\nRUN echo warm > /warm.txt\nCOPY warm.sh /\n`);
  writeFileSync(join(context, 'warm.sh'), 'echo warm\n');
  return context;
}

/**
 * `files` files of about `bytes / files` bytes each (sizes vary ±50%), 200 to a
 * directory, copied by one COPY.
 */
export function copyFixture(dir: string, name: string, files: number, bytes: number): Fixture {
  const context = join(dir, name);
  const tree = join(context, 'tree');
  mkdirSync(tree, { recursive: true });
  writeFileSync(join(context, 'Dockerfile'), `FROM ${BASE_IMAGE}\nCOPY tree /data\n`);
  const buf = noise(0x9e3779b9);
  const avg = Math.max(1, Math.floor(bytes / files));
  let total = 0;
  for (let i = 0; i < files; i++) {
    const sub = join(tree, `d${String(Math.floor(i / 200)).padStart(4, '0')}`);
    if (i % 200 === 0) mkdirSync(sub);
    // Sizes from avg/2 to 3·avg/2, so the mean stays avg.
    const size = Math.min(buf.length, Math.floor(avg / 2 + ((i * 7919) % (avg + 1))));
    const off = (i * 4099) % (buf.length - size + 1);
    writeFileSync(join(sub, `f${i}.bin`), buf.subarray(off, off + size));
    total += size;
  }
  return { name, context, kind: 'copy', copyDir: 'tree', files, bytes: total };
}

/** The RUN of bigrun: `mb` MiB in 64 files from a fast generator (busybox has no faster one than dd from urandom). */
export function bigrunCommand(mb: number): string {
  const per = Math.max(1, Math.round(mb / 64));
  return `mkdir -p /big && for i in $(seq 1 64); do dd if=/dev/urandom of=/big/f$i bs=1M count=${per} 2>/dev/null; done`;
}

export function runFixture(dir: string, mb: number): Fixture {
  const context = join(dir, 'bigrun');
  mkdirSync(context, { recursive: true });
  const cmd = bigrunCommand(mb);
  writeFileSync(join(context, 'Dockerfile'), `FROM ${BASE_IMAGE}\nRUN ${cmd}\nRUN rm /big/f*[02468]\n`);
  return { name: 'bigrun', context, kind: 'run', runCommand: cmd, bytes: Math.max(1, Math.round(mb / 64)) * 64 << 20 };
}

export function stepsFixture(dir: string, steps: number): Fixture {
  const name = `steps${steps}`;
  const context = join(dir, name);
  mkdirSync(context, { recursive: true });
  const lines = [`FROM ${BASE_IMAGE}`];
  for (let i = 0; i < steps; i++) lines.push(`RUN echo ${i} > /step${i}`);
  writeFileSync(join(context, 'Dockerfile'), lines.join('\n') + '\n');
  return { name, context, kind: 'steps' };
}
