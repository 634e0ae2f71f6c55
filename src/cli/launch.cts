/**
 * The CLI's entry (bin/tsbuild execs `node dist/cli/launch.cjs`). It loads the one-file CLI
 * bundle through a V8 code cache kept next to it, so a start skips compiling ~850 KB of
 * JavaScript (≈ 25 ms of a ≈ 100 ms fully cached build); rootfs workers start through it too.
 * CommonJS and built-ins only: it runs before anything else is loaded.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { dirname, join } from 'node:path';
import vm from 'node:vm';

interface Bundle {
  main(argv: string[]): Promise<number>;
  serveRootfsOps(): Promise<void>;
  useBundledWorker(launcher: string, flag: string): void;
}

/** argv[2] that makes this process a rootfs worker (exec/rootfs-worker.ts). */
const ROOTFS_WORKER_FLAG = '--tsbuild-rootfs-worker';

const bundlePath = join(__dirname, 'tsbuild.cjs');
const cachePath = `${bundlePath}.v8cache`;

function readOptional(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

function loadBundle(): { bundle: Bundle; saveCache(): void } {
  const cached = readOptional(cachePath);
  // ASCII (scripts/bundle.mjs makes sure): latin1 skips UTF-8 decoding.
  const script = new vm.Script(Module.wrap(readFileSync(bundlePath, 'latin1')), {
    filename: bundlePath,
    ...(cached ? { cachedData: cached } : {}),
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} as Bundle };
  (script.runInThisContext() as (...args: unknown[]) => void).call(module.exports, module.exports, Module.createRequire(bundlePath), module, bundlePath, dirname(bundlePath));
  // Written after a run, so that the functions that run compiled lazily are in it too; only
  // when missing or stale (another node, other flags). Atomic: concurrent starts race harmlessly.
  const stale = cached === undefined || script.cachedDataRejected === true;
  return {
    bundle: module.exports,
    saveCache: () => {
      if (!stale) return;
      const tmp = `${cachePath}.${process.pid}.tmp`;
      try {
        writeFileSync(tmp, script.createCachedData());
        renameSync(tmp, cachePath);
      } catch {
        // A read-only install: every start compiles, nothing else changes.
        rmSync(tmp, { force: true });
      }
    },
  };
}

async function launch(): Promise<void> {
  const { bundle, saveCache } = loadBundle();
  if (process.argv[2] === ROOTFS_WORKER_FLAG) {
    await bundle.serveRootfsOps();
    return;
  }
  bundle.useBundledWorker(__filename, ROOTFS_WORKER_FLAG);
  const code = await bundle.main(process.argv);
  saveCache();
  // Output written to pipes and files is already out (synchronous on Linux); exiting now skips
  // tearing down the heap, ≈ 15 ms.
  process.exit(code);
}

launch().catch((e: unknown) => {
  process.stderr.write(`tsbuild: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
