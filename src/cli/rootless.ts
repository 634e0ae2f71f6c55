/**
 * Rootless tsbuild: run by a non-root user, the CLI re-executes itself as "root" of a new user
 * namespace (util-linux `unshare`), so every code path — overlay mounts, the sandbox's
 * namespaces, chown of layer files — is the rootful one. The mapping is rootless dockerd's:
 * 0 → the user, 1…N → the user's first /etc/subuid and /etc/subgid ranges (newuidmap and
 * newgidmap, Debian package uidmap); without them only 0 exists (mode 'single'), and a layer or
 * RUN that needs another owner fails with a hint (rootlessHint).
 *
 * The outer process only waits: it forwards SIGINT/SIGTERM/SIGHUP to the inner one (which runs
 * in its own session, so a terminal's Ctrl-C arrives once) and exits with its status. The inner
 * one dies with it (parent-death signal) even on kill -9.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants as osConstants, userInfo } from 'node:os';
import { TsbuildError } from '../errors.js';
import { hostIds, mappingFor, unshareUserArgs, type UsernsMapping } from '../sys/userns.js';
import { defaultRoot } from './root.js';

/** Set in the inner process: 'subid' or 'single' (UsernsMapping.mode). */
export const USERNS_ENV = 'TSBUILD_USERNS';

/** Commands that never touch a store or mount anything: no namespace needed. */
const PLAIN_COMMANDS = new Set(['parse', 'login', 'logout', 'help', '-h', '--help', '-V', '--version']);

/** Whether `argv` (process.argv) must run in a user namespace when not root. Pure. */
export function needsNamespace(argv: readonly string[]): boolean {
  const first = argv[2];
  return first !== undefined && !PLAIN_COMMANDS.has(first);
}

/** Why user namespaces cannot be used here, or undefined. */
function usernsDisabled(): string | undefined {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  if (read('/proc/sys/user/max_user_namespaces') === '0') return 'user.max_user_namespaces is 0';
  if (read('/proc/sys/kernel/unprivileged_userns_clone') === '0') return 'kernel.unprivileged_userns_clone is 0';
  return undefined;
}

/** The inner command line: `setpriv --pdeathsig KILL -- unshare <userns> -- node …`. Pure. */
export function innerCommand(m: UsernsMapping, node: string, execArgv: readonly string[], argv: readonly string[]): string[] {
  return [
    '/usr/bin/setpriv',
    '--pdeathsig',
    'KILL',
    '--',
    '/usr/bin/unshare',
    // No mount namespace of its own: everything that mounts (sandbox, rootfs worker, overlay
    // probe) makes its own with unshare, which "root" of the user namespace may; a copy of
    // the host's mount table here would pin other processes' mounts and name their dirs.
    ...unshareUserArgs(m),
    '--',
    node,
    ...execArgv,
    ...argv.slice(1),
  ];
}

/**
 * Runs the command in a user namespace when tsbuild is not root and not already there; returns
 * its exit code, or undefined when this process should run the command itself.
 */
export async function reexecRootless(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  if (process.geteuid?.() !== 0 && env[USERNS_ENV] === undefined && needsNamespace(argv)) return reexec(argv, env);
  return undefined;
}

async function reexec(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const disabled = usernsDisabled();
  if (disabled !== undefined) {
    throw new TsbuildError('ROOTLESS', `tsbuild as a non-root user needs user namespaces, but ${disabled}: enable them (sysctl) or run tsbuild as root`);
  }
  for (const tool of ['/usr/bin/unshare', '/usr/bin/setpriv']) {
    if (!existsSync(tool)) throw new TsbuildError('ROOTLESS', `${tool} not found: install the Debian package util-linux`);
  }
  const uid = process.geteuid?.() ?? 0;
  const gid = process.getegid?.() ?? 0;
  // TSBUILD_ROOTLESS_MAPPING=single: map only 0, as on a host without subordinate ids (tests).
  const host = hostIds(uid, gid, userInfo().username);
  const mapping = mappingFor(env['TSBUILD_ROOTLESS_MAPPING'] === 'single' ? { ...host, helpers: false } : host);
  // Inside, tsbuild is uid 0: the default root must be the user's, decided out here.
  const innerEnv: NodeJS.ProcessEnv = { ...env, [USERNS_ENV]: mapping.mode, TSBUILD_ROOT: env['TSBUILD_ROOT'] || defaultRoot(env) };
  const [cmd, ...args] = innerCommand(mapping, process.execPath, process.execArgv, argv);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd as string, args, { stdio: 'inherit', env: innerEnv, detached: true });
    const forward = (sig: NodeJS.Signals) => {
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, sig);
        } catch {
          /* already gone */
        }
      }
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, forward);
    const done = () => signals.forEach((s) => process.off(s, forward));
    child.on('error', (e) => {
      done();
      reject(new TsbuildError('ROOTLESS', `cannot start ${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('exit', (code, sig) => {
      done();
      resolve(sig !== null ? 128 + ((osConstants.signals as Record<string, number>)[sig] ?? 0) : (code ?? 1));
    });
  });
}

/**
 * A hint for errors that come from an owner the namespace cannot represent (EINVAL from chown,
 * "Invalid argument" from a RUN's chown): only with the single-id mapping, else undefined.
 */
export function rootlessHint(e: unknown, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env[USERNS_ENV] !== 'single') return undefined;
  const err = e as NodeJS.ErrnoException | undefined;
  const text = `${err?.message ?? ''} ${(e as { stderrTail?: string } | undefined)?.stderrTail ?? ''}`;
  const chownEinval = err?.code === 'EINVAL' && /chown/.test(err.syscall ?? '');
  if (!chownEinval && !/Invalid argument|EINVAL/.test(text)) return undefined;
  const user = env['USER'] ?? env['LOGNAME'] ?? 'USER';
  return (
    'tsbuild runs rootless with only uid/gid 0 mapped (no subordinate ids), so files owned by other users cannot exist in a build. ' +
    `Install the Debian package uidmap and give ${user} a range: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user}`
  );
}
