/** What the CLI bundle (dist/cli/tsbuild.cjs, made by scripts/bundle.mjs) offers its launcher, cli/launch.cts. */
export { main } from './main.js';
export { serveRootfsOps } from '../exec/rootfs-ops.js';
export { useBundledWorker } from '../exec/rootfs-worker.js';
