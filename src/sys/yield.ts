/**
 * Synchronous file syscalls in long loops, with the event loop let in now and then.
 *
 * On a small VM an async fs call costs 15–40 µs of main-thread time (a thread-pool hop and a
 * wake-up each way) against 2–4 µs for the same syscall made synchronously: walking, hashing
 * and tarring 20,000 files was mostly that overhead. Hot loops therefore call the sync API and
 * `await pacer.tick()` between items, which yields (setImmediate) once a slice of ~10 ms has
 * run, so signals, progress output and other stages still get their turn.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

const SLICE_MS = 10;

export class Pacer {
  private last = performance.now();

  /** Resolves at once while the current slice lasts; after it, on the next event-loop turn. */
  tick(): Promise<void> | undefined {
    const now = performance.now();
    if (now - this.last < SLICE_MS) return undefined;
    return nextTurn().then(() => {
      this.last = performance.now();
    });
  }
}
