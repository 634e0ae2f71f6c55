import type { Command } from 'commander';
import { fullName } from '../../image/reference.js';
import { pull } from '../../registry/pull.js';
import { plainProgress, silentProgress, ttyProgress, type ProgressSink } from '../../registry/progress.js';
import { ImageStore } from '../../store/store.js';
import { defaultRoot } from '../root.js';

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Progress on stdout: bars on a terminal, status lines elsewhere, nothing with -q. */
export function progressFor(quiet: boolean | undefined): ProgressSink {
  if (quiet) return silentProgress;
  return process.stdout.isTTY ? ttyProgress(process.stdout) : plainProgress((s) => process.stdout.write(s));
}

export function register(cli: Command): void {
  cli
    .command('pull <reference>')
    .description('pull an image from a registry (NAME[:TAG|@DIGEST])')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('--platform <os/arch[/variant]>', 'the platform to pull from a multi-platform image (default: this host)')
    .option('-q, --quiet', 'print only the image reference')
    .option('--insecure-registry <host>', 'allow plain HTTP for this registry (repeatable; localhost and 127.0.0.0/8 always are)', collect, [])
    .action(async (reference: string, opts: { root: string; platform?: string; quiet?: boolean; insecureRegistry: string[] }) => {
      const store = await ImageStore.open(opts.root);
      const r = await pull(store, reference, {
        ...(opts.platform ? { platform: opts.platform } : {}),
        insecureRegistries: opts.insecureRegistry,
        progress: progressFor(opts.quiet),
      });
      const ref = r.reference;
      process.stdout.write(`${fullName(ref)}${ref.digest !== undefined ? `@${ref.digest}` : `:${ref.tag}`}\n`);
    });
}
