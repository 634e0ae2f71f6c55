import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { TsbuildError } from '../../errors.js';
import { verifyReproducible } from '../../exec/verify-reproducible.js';
import { collect, parseBuildArgs } from '../build-args.js';
import { defaultRoot } from '../root.js';
import { sourceDateEpochOf } from './build.js';

export function register(cli: Command): void {
  cli
    .command('verify-reproducible <context>')
    .description('build twice into fresh roots (bases copied from --root) and report the first difference')
    .option('-f, --file <path>', 'the Dockerfile (default: <context>/Dockerfile)')
    .option('--build-arg <K[=V]>', 'set a build-time variable (repeatable)', collect, [] as string[])
    .option('--target <stage>', 'build up to this stage')
    .option('--root <dir>', 'store root holding the base images', defaultRoot())
    .option('--source-date-epoch <seconds>', 'the epoch (default: the newest mtime in the context)')
    .action(async (context: string, flags: { file?: string; buildArg: string[]; target?: string; root: string; sourceDateEpoch?: string }) => {
      const dockerfile = flags.file ?? join(context, 'Dockerfile');
      const buildArgs = parseBuildArgs(flags.buildArg, process.env);
      const epoch = sourceDateEpochOf(flags.sourceDateEpoch, buildArgs, process.env);
      const result = await verifyReproducible({
        root: flags.root,
        contextDir: context,
        dockerfile,
        dockerfileText: readFileSync(dockerfile, 'utf8'),
        tags: [],
        buildArgs,
        ...(flags.target !== undefined ? { target: flags.target } : {}),
        ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
      });
      if (result.identical) {
        process.stdout.write(`reproducible: both builds gave ${result.ids[0]}\n`);
        return;
      }
      throw new TsbuildError('NOT_REPRODUCIBLE', `not reproducible: ${result.ids[0]} ≠ ${result.ids[1]}\nfirst difference: ${result.difference}`);
    });
}
