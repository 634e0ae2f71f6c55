import type { Command } from 'commander';
import { analyzeImage } from '../../analyze/analyze.js';
import { compareJson } from '../../analyze/compare.js';
import { formatCompare } from '../../analyze/format.js';
import { outputFormat } from '../../analyze/options.js';
import { ImageStore } from '../../store/store.js';
import { defaultRoot } from '../root.js';

export function register(cli: Command): void {
  cli
    .command('compare <imageA> <imageB>')
    .description('two images side by side: layers, sizes, shared layers, wasted bytes, efficiency')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('--format <format>', 'text or json (tsbuild.compare/v1)')
    .action(async (refA: string, refB: string, opts: { root: string; format?: string }) => {
      const format = outputFormat(opts.format);
      const store = await ImageStore.open(opts.root);
      const a = (await analyzeImage(store, refA)).json;
      const b = (await analyzeImage(store, refB)).json;
      process.stdout.write(format === 'json' ? JSON.stringify(compareJson(a, b), null, 2) + '\n' : formatCompare(a, b));
    });
}
