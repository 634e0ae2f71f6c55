import type { Command } from 'commander';
import { TsbuildError } from '../../errors.js';
import { familiarName, familiarString, parseReference, withDefaultTag } from '../../image/reference.js';
import { pushImage } from '../../registry/push.js';
import { ImageStore } from '../../store/store.js';
import { defaultRoot } from '../root.js';
import { collect, progressFor } from './pull.js';

export function register(cli: Command): void {
  cli
    .command('push <reference>')
    .description('push an image to a registry (NAME[:TAG])')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('-a, --all-tags', 'push every tag of the repository')
    .option('--oci', 'push an OCI image manifest instead of a Docker schema2 one')
    .option('-q, --quiet', 'print only the pushed digests')
    .option('--insecure-registry <host>', 'allow plain HTTP for this registry (repeatable; localhost and 127.0.0.1/8 always are)', collect, [])
    .action(async (reference: string, opts: { root: string; allTags?: boolean; oci?: boolean; quiet?: boolean; insecureRegistry: string[] }) => {
      const store = await ImageStore.open(opts.root);
      const parsed = parseReference(reference);
      let refs = [familiarString(withDefaultTag(parsed))];
      if (opts.allTags) {
        if (parsed.tag !== undefined || parsed.digest !== undefined) throw new TsbuildError('USAGE', 'tag can\'t be used with --all-tags/-a');
        const name = familiarName(parsed);
        refs = (await store.list()).flatMap((s) => s.refs).filter((r) => !r.includes('@') && familiarName(parseReference(r)) === name).sort();
        if (refs.length === 0) throw new TsbuildError('NO_IMAGE', `An image does not exist locally with the tag: ${name}`);
      }
      for (const r of refs) {
        const result = await pushImage(store, r, { oci: opts.oci ?? false, insecureRegistries: opts.insecureRegistry, progress: progressFor(opts.quiet) });
        if (opts.quiet) process.stdout.write(`${result.digest}\n`);
      }
    });
}
