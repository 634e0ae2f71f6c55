/**
 * Temp dirs outside the store, named after the process that owns them so that a
 * kill -9 leaves nothing the next tsbuild does not clean: `<os.tmpdir()>/tsbuild-<owner
 * token>` (rootfs workers' mount points, a stdin context without a store) and
 * `/dev/shm/tsbuild-<owner token>` (secrets: tmpfs, never on the store's disk).
 * A process removes its own (empty) dirs when it exits; ImageStore.open sweeps
 * those of dead owners.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeTree } from './fsutil.js';
import { ownerAlive, ownerToken } from './lock.js';

export type TmpKind = 'disk' | 'shm';

const PREFIX = 'tsbuild-';
const OWNED = /^tsbuild-(\d+-\d+)$/;

/** The parent dirs to look in: /dev/shm only where it exists (else secrets fall back to disk). */
export function tmpBases(): Record<TmpKind, string> {
  return { disk: tmpdir(), shm: existsSync('/dev/shm') ? '/dev/shm' : tmpdir() };
}

const made = new Map<string, Promise<string>>();

/** This process's dir of that kind, created 0700 on first use. */
export function processTmpDir(kind: TmpKind): Promise<string> {
  const dir = join(tmpBases()[kind], PREFIX + ownerToken());
  let p = made.get(dir);
  if (!p) {
    if (made.size === 0) process.once('exit', removeOwnDirs);
    p = mkdir(dir, { recursive: true, mode: 0o700 }).then(() => dir);
    made.set(dir, p);
  }
  return p;
}

/** At exit: what callers left is theirs to have removed; only an empty dir goes (never rm -r across a mount). */
function removeOwnDirs(): void {
  for (const dir of made.keys()) {
    try {
      rmdirSync(dir);
    } catch {
      /* not empty or gone: the next sweep takes it once we are dead */
    }
  }
}

/** Mount points under `dir` in this mount namespace (a dir with one is left alone). */
function hasMountsUnder(dir: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((l) => (l.split(' ')[4] ?? '').startsWith(dir + '/'));
  } catch {
    return false;
  }
}

/** The per-process temp dirs of dead owners, in every base (a readdir of each). */
export function deadProcessTmpDirs(): string[] {
  const dead: string[] = [];
  for (const base of new Set(Object.values(tmpBases()))) {
    let names: string[];
    try {
      names = readdirSync(base);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = OWNED.exec(name);
      if (m && !ownerAlive(m[1]!)) dead.push(join(base, name));
    }
  }
  return dead;
}

/**
 * Removes deadProcessTmpDirs(); `kill` first stops what may still run out of them (a rootfs
 * worker that outlived its parent).
 */
export async function sweepProcessTmpDirs(kill: (dirs: string[]) => Promise<unknown>): Promise<string[]> {
  const dead = deadProcessTmpDirs();
  if (dead.length === 0) return [];
  await kill(dead);
  const removed: string[] = [];
  for (const dir of dead) {
    if (hasMountsUnder(dir)) continue;
    await removeTree(dir).catch(() => undefined);
    removed.push(dir);
  }
  return removed;
}
