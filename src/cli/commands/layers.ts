import type { Command } from 'commander';
import { analyzeImage } from '../../analyze/analyze.js';
import { formatLayers, layersRows } from '../../analyze/format.js';
import { analyzeOptionsFrom, dockerfileOptions, outputFormat, type DockerfileCliOptions } from '../../analyze/options.js';
import { ImageStore } from '../../store/store.js';
import { defaultRoot } from '../root.js';

export function register(cli: Command): void {
  dockerfileOptions(
    cli
      .command('layers <image>')
      .description('one row per step: instruction (and Dockerfile line), diffID, chainID, cache-id, size, files added/modified/deleted')
      .option('--root <dir>', 'store root', defaultRoot())
      .option('--no-trunc', "don't truncate IDs and instructions")
      .option('--format <format>', 'text or json (tsbuild.layers/v1)'),
  ).action(async (ref: string, opts: DockerfileCliOptions & { root: string; trunc: boolean; format?: string }) => {
    const format = outputFormat(opts.format);
    const store = await ImageStore.open(opts.root);
    const { json } = await analyzeImage(store, ref, analyzeOptionsFrom(opts));
    if (format === 'json') process.stdout.write(JSON.stringify({ schema: 'tsbuild.layers/v1', image: json.image, steps: layersRows(json) }, null, 2) + '\n');
    else process.stdout.write(formatLayers(json, opts.trunc));
  });
}
