import type { Command } from 'commander';
import { explainImage, formatExplain } from '../../analyze/explain.js';
import { outputFormat } from '../../analyze/options.js';
import { ImageStore } from '../../store/store.js';
import { defaultRoot } from '../root.js';

export function register(cli: Command): void {
  cli
    .command('explain <image>')
    .description('how the image is stored, step by step with its real values: image ID, diffIDs, chainIDs (with commands that check them), layerdb and overlay2 dirs, the parent chain, empty_layer entries')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('--format <format>', 'text or json (tsbuild.explain/v1)')
    .action(async (ref: string, opts: { root: string; format?: string }) => {
      const format = outputFormat(opts.format);
      const store = await ImageStore.open(opts.root);
      const e = await explainImage(store, ref);
      process.stdout.write(format === 'json' ? JSON.stringify(e, null, 2) + '\n' : await formatExplain(e));
    });
}
