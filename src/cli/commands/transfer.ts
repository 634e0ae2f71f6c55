import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { TsbuildError } from '../../errors.js';
import { hostPlatform } from '../../plan/platform.js';
import { saveImages } from '../../store/docker-save.js';
import { loadImages } from '../../store/docker-load.js';
import { importRootfs } from '../../store/import.js';
import { ImageStore } from '../../store/store.js';
import { defaultRoot } from '../root.js';
import { sourceDateEpochOf } from './build.js';

function input(path: string | undefined): Readable {
  if (path === undefined || path === '-') {
    if (process.stdin.isTTY) throw new TsbuildError('USAGE', 'requested load from stdin, but stdin is a terminal; use -i FILE');
    return process.stdin;
  }
  return createReadStream(path);
}

export function register(cli: Command): void {
  cli
    .command('load')
    .description('load images from a docker-save tar (legacy or OCI; plain or gzip)')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('-i, --input <file>', 'read from a tar archive file instead of stdin')
    .option('-q, --quiet', 'suppress the load output')
    .action(async (opts: { root: string; input?: string; quiet?: boolean }) => {
      const store = await ImageStore.open(opts.root);
      await loadImages(store, input(opts.input), (line) => {
        if (!opts.quiet && !line.startsWith('Loading layer')) process.stdout.write(line + '\n');
      });
    });

  cli
    .command('save <images...>')
    .description('save images to a tar archive that docker load accepts')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .option('--format <format>', 'docker (20.10 legacy layout) or oci (OCI image layout + manifest.json)', 'docker')
    .action(async (names: string[], opts: { root: string; output?: string; format: string }) => {
      if (opts.format !== 'docker' && opts.format !== 'oci') throw new TsbuildError('USAGE', `--format must be docker or oci, not ${opts.format}`);
      const store = await ImageStore.open(opts.root);
      if (opts.output === undefined) {
        if (process.stdout.isTTY) throw new TsbuildError('USAGE', 'cowardly refusing to save to a terminal; use -o FILE or redirect');
        await saveImages(store, names, process.stdout, opts.format);
        return;
      }
      // Written beside the target and renamed: a failed save leaves no half file.
      const tmp = `${opts.output}.tmp-${process.pid}`;
      try {
        await saveImages(store, names, createWriteStream(tmp), opts.format);
        await rename(tmp, opts.output);
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
    });

  cli
    .command('import <file> [reference]')
    .description('import a root filesystem tar (or - for stdin) as a one-layer image')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('-m, --message <text>', 'commit message (default "Imported from -")')
    .option('--source-date-epoch <seconds>', 'created time (also SOURCE_DATE_EPOCH), for a reproducible image ID')
    .action(async (file: string, reference: string | undefined, opts: { root: string; message?: string; sourceDateEpoch?: string }) => {
      const store = await ImageStore.open(opts.root);
      const epoch = sourceDateEpochOf(opts.sourceDateEpoch, {}, process.env);
      const id = await importRootfs(store, input(file), {
        ...(reference ? { reference } : {}),
        ...(opts.message ? { message: opts.message } : {}),
        ...(epoch !== undefined ? { now: new Date(epoch * 1000) } : {}),
        platform: hostPlatform(),
      });
      process.stdout.write(id + '\n');
    });
}
