/**
 * A tiny busybox rootfs for sandbox tests, and the checks every test ends with (no overlay mount
 * left in the host's mount table, no per-run temp dir left).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { createInitLayer } from '../../src/snapshot/overlay.js';
import type { RunSpec } from '../../src/sandbox/types.js';

export const BUSYBOX = '/bin/busybox';

/** Why the root+overlay tests cannot run here, or undefined when they can. */
export function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (namespaces, overlay mounts)';
  if (!existsSync(BUSYBOX)) return `needs ${BUSYBOX} (apt-get install busybox-static)`;
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'needs overlayfs';
  return undefined;
}

const APPLETS = [
  'sh', 'echo', 'cat', 'ls', 'id', 'hostname', 'mkdir', 'rm', 'ip', 'sleep', 'env', 'ps', 'mount', 'touch',
  'grep', 'head', 'wc', 'pwd', 'stat', 'setsid', 'true', 'false', 'printf', 'ln', 'readlink', 'cut', 'tr',
];

export const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n';
export const GROUP = 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:app\n';

export interface Fixture {
  dir: string;
  lower: string;
  init: string;
  /** Per-run temp dirs of the sandbox go here (checked empty after each test). */
  tmp: string;
  /** A fresh upper+work pair. */
  snapshot(): { upperDir: string; workDir: string };
  spec(over: Partial<RunSpec> & { args: string[] }): RunSpec;
  cleanup(): void;
}

export async function makeFixture(): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-sbx-test-'));
  const lower = join(dir, 'lower');
  for (const d of ['bin', 'etc', 'tmp', 'home/app', 'srv']) mkdirSync(join(lower, d), { recursive: true, mode: 0o755 });
  copyFileSync(BUSYBOX, join(lower, 'bin/busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(lower, 'bin', a));
  writeFileSync(join(lower, 'etc/passwd'), PASSWD);
  writeFileSync(join(lower, 'etc/group'), GROUP);
  writeFileSync(join(lower, 'etc/hosts'), 'image hosts file\n');
  writeFileSync(join(lower, 'etc/deleteme'), 'bye\n');
  const init = join(dir, 'init');
  await createInitLayer(init, { lowerDirs: [lower] });
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  let n = 0;
  const fx: Fixture = {
    dir,
    lower,
    init,
    tmp,
    snapshot() {
      n++;
      const upperDir = join(dir, `upper${n}`);
      const workDir = join(dir, `work${n}`);
      mkdirSync(upperDir, { mode: 0o755 });
      mkdirSync(workDir);
      return { upperDir, workDir };
    },
    spec(over) {
      return {
        rootfs: { lowerDirs: [lower], ...fx.snapshot() },
        initDir: init,
        env: ['PATH=/bin'],
        cwd: '/',
        user: { uid: 0, gid: 0, additionalGids: [0] },
        hostname: 'tsbuild-test',
        network: 'default',
        ...over,
      };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

/** Host mounts that involve the fixture's dir (other processes on the machine may mount overlays too). */
export function overlayMounts(fx: Fixture): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(fx.dir));
}

/** Everything under dir, relative, sorted. */
export function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).map(String).sort();
}

/** The state every test must leave: no new overlay mount on the host, no per-run temp dir. */
export function assertClean(fx: Fixture, mountsBefore: string[]): void {
  assert.deepEqual(overlayMounts(fx), mountsBefore, 'a mount leaked into the host mount table');
  assert.deepEqual(readdirSync(fx.tmp), [], 'a per-run temp dir was left behind');
}

/** Collect a run's output. */
export function collector(): { out: () => string; err: () => string; onStdout(c: Buffer): void; onStderr(c: Buffer): void } {
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  return {
    out: () => Buffer.concat(o).toString('utf8'),
    err: () => Buffer.concat(e).toString('utf8'),
    onStdout: (c) => o.push(c),
    onStderr: (c) => e.push(c),
  };
}
