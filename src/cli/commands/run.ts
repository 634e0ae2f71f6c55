import type { Command } from 'commander';
import { runContainer } from '../../exec/run-container.js';
import { ImageStore } from '../../store/store.js';
import { collect } from '../build-args.js';
import { defaultRoot } from '../root.js';

export function register(cli: Command): void {
  cli
    .command('run <image> [command...]')
    .description('run a command in a throwaway container of an image (like docker run --rm)')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('-e, --env <K=V>', 'set an environment variable (repeatable)', collect, [] as string[])
    .option('-u, --user <user>', 'user[:group] to run as')
    .option('-w, --workdir <dir>', 'working directory')
    .option('--entrypoint <cmd>', 'override the entrypoint')
    .option('--network <mode>', 'default, host or none', 'default')
    .passThroughOptions()
    .action(async (image: string, command: string[], opts: { root: string; env: string[]; user?: string; workdir?: string; entrypoint?: string; network: string }) => {
      const store = await ImageStore.open(opts.root);
      const code = await runContainer(store, {
        image,
        command,
        env: opts.env,
        ...(opts.user !== undefined ? { user: opts.user } : {}),
        ...(opts.workdir !== undefined ? { workdir: opts.workdir } : {}),
        ...(opts.entrypoint !== undefined ? { entrypoint: opts.entrypoint } : {}),
        network: opts.network as 'default' | 'host' | 'none',
        onStdout: (c) => void process.stdout.write(c),
        onStderr: (c) => void process.stderr.write(c),
      });
      process.exitCode = code;
    });
}
