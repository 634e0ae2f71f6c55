/**
 * Runs the stages of a build as a dependency graph: a stage starts as soon as
 * every stage it reads from (FROM <stage>, COPY --from, RUN --mount from=) is
 * built, at most `limit` at a time. The first failure aborts the stages still
 * running (through their signal) and the build waits for them to wind down —
 * their layer dirs and mounts cleaned up — before it reports that failure.
 */
import { availableParallelism } from 'node:os';
import { TsbuildError } from '../errors.js';

export interface StageNode {
  index: number;
  dependsOn: readonly number[];
}

/** Bounded by cores, at least 1. */
export function defaultParallelism(): number {
  return Math.max(1, availableParallelism());
}

/**
 * Whether two stages of `order` could ever run at the same time: some stage
 * neither depends on the other, directly or not. When not, the build is a chain
 * and keeps the classic sequential output.
 */
export function hasIndependentStages(order: readonly number[], nodes: ReadonlyMap<number, StageNode>): boolean {
  const ancestors = new Map<number, Set<number>>();
  const of = (i: number): Set<number> => {
    let set = ancestors.get(i);
    if (set) return set;
    set = new Set();
    ancestors.set(i, set);
    for (const d of nodes.get(i)?.dependsOn ?? []) {
      set.add(d);
      for (const a of of(d)) set.add(a);
    }
    return set;
  };
  for (let a = 0; a < order.length; a++) {
    for (let b = a + 1; b < order.length; b++) {
      const x = order[a]!;
      const y = order[b]!;
      if (!of(x).has(y) && !of(y).has(x)) return true;
    }
  }
  return false;
}

/**
 * Calls `run` for every stage of `order` (dependencies first, as the planner
 * gives it) once its dependencies inside `order` are done. Rejects with the first
 * error after every started stage has settled; `signal` (the whole build's) stops
 * new stages from starting and is passed on, combined, to the running ones.
 */
export async function runStageGraph(
  order: readonly number[],
  nodes: ReadonlyMap<number, StageNode>,
  limit: number,
  run: (index: number, signal: AbortSignal) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const inOrder = new Set(order);
  const done = new Set<number>();
  const started = new Set<number>();
  const running = new Set<Promise<void>>();
  const stop = new AbortController();
  const stageSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  let failure: { error: unknown } | undefined;
  const max = Math.max(1, Math.floor(limit));

  const ready = (i: number) => !started.has(i) && (nodes.get(i)?.dependsOn ?? []).every((d) => !inOrder.has(d) || done.has(d));
  const launch = () => {
    for (const i of order) {
      if (failure || stageSignal.aborted || running.size >= max) return;
      if (!ready(i)) continue;
      started.add(i);
      const p: Promise<void> = run(i, stageSignal).then(
        () => void done.add(i),
        (error: unknown) => {
          // The first error is the build's; the aborts it causes in the others are not.
          if (!failure) {
            failure = { error };
            stop.abort(error);
          }
        },
      );
      running.add(p);
      void p.finally(() => running.delete(p));
    }
  };

  launch();
  while (running.size > 0) {
    await Promise.race(running);
    // Let the settled promise's own finally run before counting.
    await new Promise<void>((r) => setImmediate(r));
    launch();
  }
  if (failure) throw failure.error;
  signal?.throwIfAborted();
  const missing = order.filter((i) => !done.has(i));
  if (missing.length > 0) throw new TsbuildError('INTERNAL', `stages ${missing.join(', ')} never became ready`);
}
