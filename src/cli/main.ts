/** The command line: the only place that prints or sets the exit code. */
import { Command } from 'commander';
import { DockerfileError, TsbuildError } from '../errors.js';
import * as analyze from './commands/analyze.js';
import * as buildCommand from './commands/build.js';
import * as compare from './commands/compare.js';
import * as explain from './commands/explain.js';
import * as history from './commands/history.js';
import * as images from './commands/images.js';
import * as inspect from './commands/inspect.js';
import * as login from './commands/login.js';
import * as layers from './commands/layers.js';
import * as parse from './commands/parse.js';
import * as pull from './commands/pull.js';
import * as push from './commands/push.js';
import * as run from './commands/run.js';
import * as tag from './commands/tag.js';
import * as verify from './commands/verify.js';
import * as transfer from './commands/transfer.js';
import * as fsck from './commands/fsck.js';
import { constants as osConstants } from 'node:os';
import { abortBuilds } from '../exec/run-build.js';
import { reexecRootless, rootlessHint } from './rootless.js';
import { TSBUILD_VERSION } from '../version.js';

export function program(): Command {
  const cli = new Command('tsbuild').description('Daemonless Dockerfile builder writing a Docker overlay2 image store').version(TSBUILD_VERSION.replace(/^tsbuild-/, ''), '-V, --version').showHelpAfterError().enablePositionalOptions();
  for (const command of [buildCommand, parse, run, images, inspect, history, tag, transfer, verify, layers, analyze, explain, compare, pull, push, login, fsck]) command.register(cli);
  return cli;
}

/** The interrupted build's rejection (its `reason`). */
export class InterruptedError extends TsbuildError {
  constructor(readonly signal: NodeJS.Signals) {
    super('INTERRUPTED', `interrupted by ${signal}`);
  }
}

function signalExitCode(sig: NodeJS.Signals): number {
  return 128 + ((osConstants.signals as Record<string, number>)[sig] ?? 0);
}

/**
 * SIGINT/SIGTERM: a build in progress is aborted — its RUN process tree killed, the
 * unfinished layer and temp dirs removed — and tsbuild exits 130/143. With no build
 * running, or on a second signal, or if clean-up takes over 20 s, it exits at once
 * (the next open of the store sweeps what is left).
 */
function installSignalHandlers(): { received(): NodeJS.Signals | undefined; dispose(): void } {
  let received: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (received !== undefined || abortBuilds(new InterruptedError(sig)) === 0) process.exit(signalExitCode(received ?? sig));
    received = sig;
    setTimeout(() => process.exit(signalExitCode(sig)), 20_000).unref();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    received: () => received,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  // Not root: run in a user namespace (cli/rootless.ts), this process only waits.
  try {
    const code = await reexecRootless(argv);
    if (code !== undefined) return code;
  } catch (e) {
    if (!(e instanceof TsbuildError)) throw e;
    process.stderr.write(`tsbuild: ${e.message}\n`);
    return 1;
  }
  const signals = installSignalHandlers();
  try {
    await program().parseAsync(argv);
    const sig = signals.received();
    if (sig !== undefined) return signalExitCode(sig);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const sig = signals.received();
    if (sig !== undefined) {
      process.stderr.write(`tsbuild: interrupted by ${sig}; the build was stopped and its temporary files removed\n`);
      return signalExitCode(sig);
    }
    const hint = rootlessHint(e);
    if (e instanceof DockerfileError) process.stderr.write(e.format() + '\n');
    else if (e instanceof TsbuildError) process.stderr.write(`tsbuild: ${e.message}\n`);
    else if (hint === undefined) throw e;
    else process.stderr.write(`tsbuild: ${(e as Error).message}\n`);
    if (hint !== undefined) process.stderr.write(`tsbuild: ${hint}\n`);
    return 1;
  } finally {
    signals.dispose();
  }
}
