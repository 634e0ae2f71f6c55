import type { Command } from 'commander';
import { fsck } from '../../store/fsck.js';
import { ImageStore } from '../../store/store.js';
import { defaultRoot } from '../root.js';

export function register(cli: Command): void {
  cli
    .command('fsck')
    .description('check the store (configs, layer chains, layerdb, overlay2 dirs and links, layer data, tags, orphans); exit 1 on problems')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('--repair', 'remove what is broken or orphaned')
    .option('--no-verify-data', 'skip reassembling each layer tar against its diffID')
    .action(async (opts: { root: string; repair?: boolean; verifyData: boolean }) => {
      // Opening the store runs the crash sweep first (what an interrupted write left).
      const store = await ImageStore.open(opts.root);
      const result = await fsck(store, {
        repair: opts.repair ?? false,
        verifyData: opts.verifyData,
        report: (line) => void process.stdout.write(line + '\n'),
      });
      const problems = result.findings.length;
      process.stdout.write(`${result.images} images, ${result.layers} layers checked; ${problems === 0 ? 'no problems' : `${problems} problem${problems === 1 ? '' : 's'}`}${result.repaired > 0 ? `; ${result.repaired} repaired` : ''}\n`);
      if (problems > 0) process.exitCode = 1;
    });
}
