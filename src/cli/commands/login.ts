import type { Command } from 'commander';
import { TsbuildError } from '../../errors.js';
import { login, logout, loginDomain } from '../../registry/login.js';
import { collect } from './pull.js';

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(parts).toString('utf8').replace(/\r?\n$/, '');
}

/** Reads a line from the terminal; `hidden` turns echo off (a password). */
async function prompt(question: string, hidden: boolean): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  if (hidden && stdin.isTTY) stdin.setRawMode(true);
  stdin.resume();
  let line = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const onData = (b: Buffer) => {
        for (const ch of b.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            resolve(line);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            reject(new TsbuildError('USAGE', 'login cancelled'));
            return;
          }
          if (ch === '\u007f') line = line.slice(0, -1);
          else line += ch;
          if (!hidden) continue;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    if (hidden && stdin.isTTY) {
      stdin.setRawMode(false);
      process.stderr.write('\n');
    }
    stdin.pause();
  }
}

export function register(cli: Command): void {
  cli
    .command('login [server]')
    .description('log in to a registry (default Docker Hub); credentials go to ~/.docker/config.json or its credential helper')
    .option('-u, --username <name>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--insecure-registry <host>', 'allow plain HTTP for this registry (repeatable)', collect, [])
    .action(async (server: string | undefined, opts: { username?: string; password?: string; passwordStdin?: boolean; insecureRegistry: string[] }) => {
      let { username, password } = opts;
      if (opts.passwordStdin) {
        if (password !== undefined) throw new TsbuildError('USAGE', '--password and --password-stdin are mutually exclusive');
        if (!username) throw new TsbuildError('USAGE', 'must provide --username with --password-stdin');
        password = await readStdin();
      }
      if (password !== undefined && !opts.passwordStdin) process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      if (username === undefined || password === undefined) {
        if (!process.stdin.isTTY) throw new TsbuildError('USAGE', 'Error: Cannot perform an interactive login from a non TTY device');
        username ??= await prompt('Username: ', false);
        password ??= await prompt('Password: ', true);
      }
      if (!username) throw new TsbuildError('USAGE', 'Error: Non-null Username Required');
      if (!password) throw new TsbuildError('USAGE', 'Error: Non-null Password Required');
      await login(server, { username, password }, { insecureRegistries: opts.insecureRegistry });
      process.stdout.write('Login Succeeded\n');
    });

  cli
    .command('logout [server]')
    .description('forget the credentials of a registry (default Docker Hub)')
    .action(async (server: string | undefined) => {
      const { key, removed } = await logout(server);
      process.stdout.write(removed ? `Removing login credentials for ${key}\n` : `Not logged in to ${loginDomain(server)}\n`);
    });
}
