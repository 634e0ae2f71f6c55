// Bundles the compiled CLI (dist/cli/main.js and everything it imports) into one
// module, dist/cli/tsbuild.mjs: loading ~150 separate ES modules costs ~150 ms at
// every start, the bundle ~45 ms. It stays in dist/cli/ so paths derived from
// import.meta.url (examples/, the rootfs worker under dist/exec/) still resolve.
import { join } from 'node:path';
import { build } from 'esbuild';

// The compiled tree: dist/ by default (the bench bundles its private copy).
const dist = process.argv[2] ?? 'dist';

await build({
  entryPoints: [join(dist, 'cli/main.js')],
  outfile: join(dist, 'cli/tsbuild.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  // CommonJS dependencies (commander) call require() for Node built-ins.
  banner: { js: "import { createRequire as tsbuildCreateRequire } from 'node:module'; const require = tsbuildCreateRequire(import.meta.url);" },
});
