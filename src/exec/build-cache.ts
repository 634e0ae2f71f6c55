/**
 * The registry build cache around a build (run-build.ts): which images a build
 * commits (for `--cache-to`), the lookup on a local miss (`--cache-from`), and
 * the export after the build. The format lives in registry/cache.ts.
 */
import type { ImageId } from '../image/digest.js';
import { cacheImageIds, exportCache, RegistryCacheSource } from '../registry/cache.js';
import type { ClientOptions } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import type { ImageStore } from '../store/store.js';
import type { BuildDeps, BuildEvents, BuildResult } from './build.js';
import type { CacheFromSpec, CacheToSpec } from './build-specs.js';

/** `events`, also recording every committed image ID (stage sinks included) into `into`. */
export function trackCommitted(events: BuildEvents, into: ImageId[]): BuildEvents {
  // Inherit rather than spread: a sink may be a class with methods on its prototype.
  const wrapped = Object.create(events) as BuildEvents;
  wrapped.committed = (id) => {
    into.push(id);
    events.committed(id);
  };
  const stage = events.stage;
  if (stage) wrapped.stage = (tag) => trackCommitted(stage.call(events, tag), into);
  return wrapped;
}

/**
 * BuildDeps.remoteCache for `--cache-from`: an unreadable cache (missing ref,
 * wrong type) or a record that fails verification (corrupt blob, wrong diffID)
 * is a warning and a miss — the step runs here instead.
 */
export function remoteCacheFor(store: ImageStore, specs: readonly CacheFromSpec[], opts: ClientOptions & { tmpDir: string; warn(message: string): void; info?(message: string): void }): NonNullable<BuildDeps['remoteCache']> {
  // One line per cache layer fetched, not per-byte bars: the step's progress shows the rest.
  const progress = { message: () => undefined, close: () => undefined, layer: (id: string, status: string) => void (status === 'Download complete' && opts.info?.(` ---> Downloaded cache layer ${id}`)) };
  const source = new RegistryCacheSource(store, specs.map((s) => s.ref), { ...opts, progress });
  return {
    find: async (parent, probe) => {
      try {
        return await source.find(parent, probe);
      } catch (e) {
        if (!(e instanceof RegistryError)) throw e;
        opts.warn(`build cache entry not used: ${e.message}`);
        return undefined;
      }
    },
  };
}

/** Pushes the build's cache to every `--cache-to` ref; failures are errors unless `ignore-error=true`. */
export async function exportBuildCache(store: ImageStore, result: BuildResult, committed: readonly ImageId[], specs: readonly CacheToSpec[], opts: ClientOptions & { warn(message: string): void; info?(message: string): void }): Promise<void> {
  const bases = new Set<ImageId>();
  for (const s of result.plan.stages) {
    if (s.base.kind !== 'image') continue;
    const image = await store.resolve(s.base.ref);
    if (image) bases.add(image.id);
  }
  const parents = new Map<ImageId, ImageId | null>();
  for (const id of new Set([...committed, result.id])) parents.set(id, (await store.images.get(id))?.parent ?? null);
  // The final image's chain may run through images committed before this build (all cache hits are committed too).
  const parentOf = (id: ImageId) => parents.get(id) ?? null;
  for (const spec of specs) {
    const ids = cacheImageIds(committed, result.id, bases, parentOf, spec.mode);
    try {
      const r = await exportCache(store, spec.ref, ids, opts);
      opts.info?.(`Exported build cache to ${spec.ref} (mode=${spec.mode}): ${r.records} steps, ${r.layers} layers, ${r.digest}`);
    } catch (e) {
      if (!spec.ignoreError) throw e;
      opts.warn(`cache export to ${spec.ref} failed: ${(e as Error).message}`);
    }
  }
}
