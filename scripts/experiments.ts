/**
 * `npm run experiments [-- --only NAME[,NAME]] [--root DIR] [--keep]`: builds the
 * examples/ pairs into a scratch store and prints a table that reproduces each
 * lesson with measured sizes. Exits 1 when a lesson's check fails. build-deps
 * (debootstrap + apt-get from Debian's mirror) is skipped with the reason when
 * the mirror or debootstrap is missing; everything else runs offline.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { humanSize, tabwrite } from '../src/cli/dockerfmt.js';
import { defaultCacheDir, ensureBusybox, EXPERIMENTS, scratchDir, unavailableReason, type ExperimentResult } from '../src/analyze/experiments.js';
import { ImageStore } from '../src/store/store.js';

const { values } = parseArgs({ options: { only: { type: 'string' }, root: { type: 'string' }, keep: { type: 'boolean', default: false } } });
const reason = unavailableReason();
if (reason) {
  console.error(`experiments: ${reason}`);
  process.exit(1);
}
const names = values.only ? values.only.split(',') : Object.keys(EXPERIMENTS);
for (const n of names) if (!EXPERIMENTS[n]) throw new Error(`unknown experiment ${n}; known: ${Object.keys(EXPERIMENTS).join(', ')}`);

const work = await scratchDir();
const root = values.root ?? join(work, 'root');
const store = await ImageStore.open(root);
const ctx = { store, root, work, cacheDir: defaultCacheDir(), log: (l: string) => console.error(l) };
const results: ExperimentResult[] = [];
try {
  await ensureBusybox(ctx);
  for (const name of names) {
    console.error(`${name}:`);
    results.push(await EXPERIMENTS[name]!(ctx));
  }
} finally {
  if (!values.keep && values.root === undefined) await rm(work, { recursive: true, force: true });
  else console.error(`store kept: ${root}`);
}

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const rows = [['EXAMPLE', 'VARIANT', 'LAYERS', 'SIZE', 'BYTES', 'WASTED (dive)', 'EFFICIENCY', 'RECLAIMABLE']];
for (const r of results) {
  if (r.skipped) rows.push([r.example, '(skipped)', '', '', '', '', '', '']);
  for (const v of r.variants) {
    const a = v.analysis;
    rows.push([r.example, v.name, String(a.layers.length), humanSize(a.image.size), String(a.image.size), String(a.wastedBytes), pct(a.efficiency), String(a.reclaimableBytes)]);
  }
}
process.stdout.write('\n' + tabwrite(rows) + '\n');
let failed = 0;
for (const r of results) {
  if (r.skipped) {
    process.stdout.write(`${r.example}: skipped — ${r.skipped}\n`);
    continue;
  }
  process.stdout.write(`${r.example}: ${r.lesson}\n`);
  for (const c of r.checks) {
    if (!c.ok) failed++;
    process.stdout.write(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}\n`);
  }
}
const total = results.reduce((n, r) => n + r.checks.length, 0);
process.stdout.write(`\n${total - failed} passed, ${failed} failed\n`);
process.exitCode = failed === 0 ? 0 : 1;
