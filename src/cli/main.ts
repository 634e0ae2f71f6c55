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

export function program(): Command {
  const cli = new Command('tsbuild').description('Daemonless Dockerfile builder writing a Docker overlay2 image store').showHelpAfterError().enablePositionalOptions();
  for (const command of [buildCommand, parse, run, images, inspect, history, tag, transfer, verify, layers, analyze, explain, compare, pull, push, login]) command.register(cli);
  return cli;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof DockerfileError) process.stderr.write(e.format() + '\n');
    else if (e instanceof TsbuildError) process.stderr.write(`tsbuild: ${e.message}\n`);
    else throw e;
    return 1;
  }
}
