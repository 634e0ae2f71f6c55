import type { Command } from 'commander';
import { ImageStore } from '../../store/store.js';
import { ago, humanSize, shortId, tabwrite } from '../dockerfmt.js';
import { defaultRoot } from '../root.js';

export function register(cli: Command): void {
  cli
    .command('images')
    .description('list images (like docker images)')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('-a, --all', 'show intermediate images too')
    .option('-q, --quiet', 'only show image IDs')
    .option('--no-trunc', 'do not truncate IDs')
    .action(async (opts: { root: string; all?: boolean; quiet?: boolean; trunc: boolean }) => {
      const store = await ImageStore.open(opts.root);
      const images = await store.list();
      const parents = new Set(images.map((i) => i.image.parent).filter((p) => p !== null));
      const rows: string[][] = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']];
      const ids: string[] = [];
      images.sort((a, b) => Date.parse(b.image.config.created) - Date.parse(a.image.config.created));
      for (const { image, refs, size } of images) {
        // Like docker: untagged images that are parents of others are intermediate.
        if (refs.length === 0 && parents.has(image.id) && !opts.all) continue;
        const id = opts.trunc ? shortId(image.id) : image.id;
        ids.push(id);
        const tags = refs.length > 0 ? refs.map((r) => [r.slice(0, r.lastIndexOf(':')), r.slice(r.lastIndexOf(':') + 1)]) : [['<none>', '<none>']];
        for (const [repo, tag] of tags) rows.push([repo!, tag!, id, ago(image.config.created), humanSize(size)]);
      }
      process.stdout.write(opts.quiet ? [...new Set(ids)].map((i) => i + '\n').join('') : tabwrite(rows));
    });
}
