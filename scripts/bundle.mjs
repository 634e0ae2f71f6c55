// Bundles the compiled CLI (dist/cli/bundle.js and everything it imports) into one
// CommonJS file, dist/cli/tsbuild.cjs, which dist/cli/launch.cjs loads through a V8
// code cache: loading ~150 separate ES modules costs ~150 ms at every start, the
// bundle ~55 ms, the code-cached bundle less. It stays in dist/cli/ so paths derived
// from import.meta.url (examples/, the rootfs worker under dist/exec/) still resolve.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { build } from 'esbuild';

// The compiled tree: dist/ by default (the bench bundles its private copy).
const dist = process.argv[2] ?? 'dist';

// Built-ins a cached build never uses (no process to spawn, no thread, nothing to gzip) load on
// first use: a stand-in module has a getter for each of the real one's exports (their names read
// here, from the Node that builds and runs the bundle), which loads it. esbuild's ESM interop
// copies names, not values, so nothing loads before a use. Commander alone pulls child_process
// and with it net and dgram; together they cost ≈ 10 ms at every start.
const require = createRequire(import.meta.url);
const LAZY = /^(node:)?(child_process|worker_threads|zlib|net|dgram)$/;
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: LAZY }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (args.namespace === 'lazy-builtin') return { path: `node:${name}`, external: true };
      return { path: name, namespace: 'lazy-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
      loader: 'js',
      contents: `let m;
const load = () => (m ??= require('node:${args.path}'));
for (const k of ${JSON.stringify(Object.getOwnPropertyNames(require(`node:${args.path}`)))}) Object.defineProperty(module.exports, k, { get: () => load()[k], enumerable: true });
`,
    }));
  },
};

await build({
  plugins: [lazyBuiltins],
  entryPoints: [join(dist, 'cli/bundle.js')],
  outfile: join(dist, 'cli/tsbuild.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  // import.meta does not exist in CommonJS: the bundle's own URL stands in for every module's.
  define: { 'import.meta.url': 'tsbuildBundleUrl' },
  banner: { js: "const tsbuildBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
});

// ASCII only, so the launcher reads it as latin1 (a one-byte string, no UTF-8 decoding). esbuild
// escapes non-ASCII in strings but keeps it in the comments it keeps: those lines are
// blanked of it; anywhere else (a regex, a raw template) is an error to fix in the source.
const out = join(dist, 'cli/tsbuild.cjs');
const lines = readFileSync(out, 'utf8').split('\n');
for (const [i, line] of lines.entries()) {
  if (!/[^\x00-\x7f]/.test(line)) continue;
  if (!/^\s*(\/\/|\/\*|\*)/.test(line)) throw new Error(`bundle: non-ASCII outside a comment at ${out}:${i + 1}: ${line.trim()}`);
  lines[i] = line.replace(/[^\x00-\x7f]/g, '?');
}
writeFileSync(out, lines.join('\n'));
