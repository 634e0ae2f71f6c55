/**
 * Running the tsbuild CLI (from the sources, via tsx) as an unprivileged user, and seeing its
 * store's layer dirs as they look inside that user's namespace (src/sys/userns.ts): host ids
 * mapped back (the user → 0, its subordinate range → 1…), `user.overlay.opaque` read as
 * `trusted.overlay.opaque`, v3 file capabilities whose root is the user read as v2.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, lchownSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostIds, innerId, inUserNamespace, mappingFor, type UsernsMapping } from '../../src/sys/userns.js';
import type { LayerEntry } from './e2e-layers.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const TSX = join(REPO, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');
const CLI = join(REPO, 'test', 'support', 'rootless-cli.ts');

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  mapping: UsernsMapping;
}

/** The user, or a reason it cannot run rootless tsbuild here. */
export function testUser(name: string): TestUser | string {
  if (process.getuid?.() !== 0) return 'needs root (to run commands as the test user)';
  if (inUserNamespace()) return 'already in a user namespace';
  let uid: number;
  let gid: number;
  try {
    uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  } catch {
    return `no user ${name} (.ci/run creates it)`;
  }
  const mapping = mappingFor(hostIds(uid, gid, name));
  if (mapping.mode !== 'subid') return `${name} has no /etc/subuid and /etc/subgid range, or newuidmap/newgidmap are missing (Debian package uidmap)`;
  try {
    execFileSync('runuser', ['-u', name, '--', 'test', '-r', CLI, '-a', '-r', TSX], { stdio: 'ignore' });
  } catch {
    return `${name} cannot read ${CLI} or ${TSX} (make the dirs above the checkout searchable, as .ci/run does)`;
  }
  try {
    execFileSync('runuser', ['-u', name, '--', 'unshare', '--user', '--map-root-user', 'true'], { stdio: 'ignore' });
  } catch {
    return 'user namespaces are disabled for unprivileged users';
  }
  return { name, uid, gid, mapping };
}

/** Gives `dir` and everything under it to the user (the user's build contexts and store roots). */
export function chownTree(dir: string, u: TestUser): void {
  lchownSync(dir, u.uid, u.gid);
  if (!lstatSync(dir).isDirectory()) return;
  for (const name of readdirSync(dir)) chownTree(join(dir, name), u);
}

/** Makes each ancestor of `dir` searchable by others (mkdtemp dirs are 0700). */
export function openPath(dir: string): void {
  for (let d = dir; d !== '/' && d !== '.'; d = join(d, '..')) {
    const st = lstatSync(d);
    if ((st.mode & 0o001) === 0) chmodSync(d, (st.mode & 0o7777) | 0o011);
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `tsbuild ARGS` as the user (it re-executes itself in its user namespace). */
export function runAsUser(u: TestUser, args: string[], opts: { input?: Buffer; cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('runuser', ['-u', u.name, '--', process.execPath, '--import', TSX, CLI, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: opts.cwd ?? '/',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', ...opts.env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.on('error', () => undefined); // EPIPE when the command fails before reading it all
    child.stdin.end(opts.input ?? Buffer.alloc(0));
  });
}

/** Rewrites a v3 security.capability (hex) whose root id is `rootUid` on the host as v2, as getxattr inside the namespace returns it. */
function capabilityInside(hex: string, rootUid: number): string {
  const b = Buffer.from(hex, 'hex');
  if (b.length !== 24 || b[3] !== 0x03 || b.readUInt32LE(20) !== rootUid) return hex;
  const v2 = Buffer.from(b.subarray(0, 20));
  v2[3] = 0x02;
  return v2.toString('hex');
}

/** Layer entries read on the host, as the user's namespace sees them. */
export function viewInside(u: TestUser, entries: LayerEntry[]): LayerEntry[] {
  return entries.map((e) => {
    const xattrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(e.xattrs)) {
      if (k === 'user.overlay.opaque') xattrs['trusted.overlay.opaque'] = v;
      else if (k.startsWith('user.overlay.')) continue;
      else if (k === 'security.capability') xattrs[k] = capabilityInside(v, u.uid);
      else xattrs[k] = v;
    }
    return { ...e, uid: innerId(u.mapping.uid, e.uid) ?? 65534, gid: innerId(u.mapping.gid, e.gid) ?? 65534, xattrs };
  });
}
