/**
 * One writer at a time per store root: the lock file holds its owner's token
 * (`<pid>-<start time>`, so a recycled pid is not mistaken for the owner). It is
 * created whole and atomically — the token is written to a private temp file which
 * is then hard-linked to the lock name (link fails with EEXIST while it is held) —
 * so a kill -9 at any instant leaves either no lock or a lock naming a dead owner.
 * A lock whose owner is gone is broken under a short second lock (`.break`), so
 * two processes that both find it stale cannot both take it.
 */
import { readFileSync } from 'node:fs';
import { link, lstat, open, readFile, rm, unlink } from 'node:fs/promises';
import { TsbuildError } from '../errors.js';
import { randomHex } from './fsutil.js';

export class StoreLockError extends TsbuildError {
  constructor(message: string) {
    super('STORE_LOCKED', message);
  }
}

/**
 * A process's state letter and start time (clock ticks since boot) from /proc, or undefined when
 * it cannot be read (no such process, or no /proc).
 */
function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', start: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

let self: string | undefined;
/** This process's owner token, `<pid>-<start time>`. */
export function ownerToken(): string {
  return (self ??= `${process.pid}-${procStat(process.pid)?.start ?? '0'}`);
}

/** Whether the process a token names still runs (false for garbage). */
export function ownerAlive(token: string): boolean {
  const m = /^(\d+)-(\d+)$/.exec(token.trim());
  if (!m) return false;
  const pid = Number(m[1]);
  if (pid === process.pid) return token.trim() === ownerToken();
  const st = procStat(pid);
  // A zombie is gone: a killed rootfs worker whose parent died too waits to be reaped by whoever
  // adopted it, and its temp dirs must be swept meanwhile.
  if (st !== undefined) return st.state !== 'Z' && st.state !== 'X' && (m[2] === '0' || st.start === m[2]);
  // No /proc (or hidden): fall back to signal 0.
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Names of the lock's helper files (temp tokens, the breaker), for the crash sweep and fsck. */
export function isLockLeftover(name: string, lockName: string): boolean {
  return name.startsWith(`${lockName}.`);
}

async function writeToken(path: string, token: string): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writeFile(token);
  } finally {
    await fh.close();
  }
}

/** Removes the lock when its owner is `dead`, under the `.break` lock (taken over after 2 s: breaking takes milliseconds). */
async function breakStale(lockPath: string, dead: string, token: string): Promise<void> {
  const breaker = `${lockPath}.break`;
  try {
    await writeToken(breaker, token);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const st = await lstat(breaker).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 2000) await rm(breaker, { force: true });
    return;
  }
  try {
    const now = await readFile(lockPath, 'utf8').catch(() => undefined);
    if (now === dead) await rm(lockPath, { force: true });
  } finally {
    await rm(breaker, { force: true });
  }
}

export async function withLock<T>(lockPath: string, fn: () => Promise<T>, timeoutMs = 300_000): Promise<T> {
  const token = ownerToken();
  const mine = `${lockPath}.${token}.${randomHex(4)}`;
  await writeToken(mine, token);
  const deadline = Date.now() + timeoutMs;
  try {
    for (let delay = 2; ; delay = Math.min(delay * 2, 100)) {
      try {
        await link(mine, lockPath);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const owner = await readFile(lockPath, 'utf8').catch(() => undefined);
      if (owner === undefined) continue;
      // An empty or garbled lock is a pre-token leftover: stale once it is a few seconds old.
      const garbage = !/^\d+-\d+$/.test(owner) && Date.now() - ((await lstat(lockPath).catch(() => undefined))?.mtimeMs ?? 0) > 5000;
      if (garbage || (/^\d+-\d+$/.test(owner) && !ownerAlive(owner))) {
        await breakStale(lockPath, owner, token);
        continue;
      }
      if (Date.now() > deadline) throw new StoreLockError(`store is locked by process ${owner.split('-')[0] || '?'} (${lockPath})`);
      await sleep(delay + Math.random() * delay);
    }
  } finally {
    await unlink(mine).catch(() => undefined);
  }
  try {
    return await fn();
  } finally {
    // Only our own lock: never one a stale-breaker handed to someone else.
    if ((await readFile(lockPath, 'utf8').catch(() => undefined)) === token) await rm(lockPath, { force: true });
  }
}
