import type { Command } from 'commander';
import { ImageStore } from '../../store/store.js';
import { defaultRoot } from '../root.js';

export function register(cli: Command): void {
  cli
    .command('tag <source> <target>')
    .description('create a tag TARGET that refers to SOURCE')
    .option('--root <dir>', 'store root', defaultRoot())
    .action(async (source: string, target: string, opts: { root: string }) => {
      const store = await ImageStore.open(opts.root);
      const image = await store.require(source);
      await store.tag(target, image.id);
    });

  cli
    .command('rmi <images...>')
    .description('remove images (untag; delete what is no longer referenced)')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('-f, --force', 'remove an image referenced by several tags')
    .action(async (refs: string[], opts: { root: string; force?: boolean }) => {
      const store = await ImageStore.open(opts.root);
      for (const ref of refs) process.stdout.write((await store.remove(ref, opts.force ?? false)).map((l) => l + '\n').join(''));
    });

  cli
    .command('prune')
    .description('remove dangling images and the layers only they used')
    .option('--root <dir>', 'store root', defaultRoot())
    .action(async (opts: { root: string }) => {
      const store = await ImageStore.open(opts.root);
      const lines = await store.prune();
      process.stdout.write(lines.length > 0 ? lines.map((l) => l + '\n').join('') : 'Total reclaimed space: 0B\n');
    });
}
