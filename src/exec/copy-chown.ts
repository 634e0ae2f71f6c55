/**
 * `--chown=<user>[:<group>]` → numeric uid/gid, as the classic builder resolves it (moby
 * builder/dockerfile internals_linux.go parseChownFlag): without a group the user string is used
 * for both; numbers are taken as they are; names are looked up in the target rootfs's /etc/passwd
 * and /etc/group (symlinks followed inside the rootfs).
 */
import { readFile } from 'node:fs/promises';
import { CopyError } from '../context/sources.js';
import { resolveInRootfs } from './copy-paths.js';

export interface Identity {
  uid: number;
  gid: number;
}

/** strconv.Atoi: optional sign, decimal digits, fits in 64 bits. */
function atoi(s: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** runc libcontainer/user line parsing: trimmed, blank lines skipped, fields split on ':'. */
function parseIdLines(text: string): string[][] {
  const out: string[][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    out.push(line.split(':'));
  }
  return out;
}

async function lookup(kind: 'user' | 'group', name: string, rootfs: string, field = 2): Promise<number> {
  const n = atoi(name);
  if (n !== undefined) return n;
  const file = kind === 'user' ? '/etc/passwd' : '/etc/group';
  const hostPath = await resolveInRootfs(rootfs, file).then((p) => p.hostPath);
  let text: string;
  try {
    text = await readFile(hostPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file or directory' : (e as Error).message;
    throw new Error(`open ${file}: ${why}`);
  }
  // passwd: name:password:uid:gid:gecos:home:shell; group: name:password:gid:members.
  for (const f of parseIdLines(text)) {
    if (f[0] !== name) continue;
    return atoi(f[field] ?? '') ?? 0;
  }
  throw new Error(`no such ${kind}: ${name}`);
}

/**
 * Resolve a --chown spec against the target rootfs. Errors read like Docker's.
 * `primaryGroup` (BuildKit): a user name without a group takes the user's gid
 * from /etc/passwd; a bare number is used for both, as in the classic builder.
 */
export async function resolveChown(spec: string, rootfs: string, primaryGroup = false): Promise<Identity> {
  const parts = spec.split(':');
  const wrap = (msg: string): CopyError => new CopyError('COPY', `unable to convert uid/gid chown string to host mapping: ${msg}`);
  if (parts.length > 2) throw wrap(`invalid chown string format: ${spec}`);
  const userStr = parts[0] as string;
  const groupStr = parts.length === 1 ? userStr : (parts[1] as string);
  let uid: number;
  let gid: number;
  try {
    uid = await lookup('user', userStr, rootfs);
  } catch (e) {
    throw wrap(`can't find uid for user ${userStr}: ${(e as Error).message}`);
  }
  if (primaryGroup && parts.length === 1 && atoi(userStr) === undefined) return { uid, gid: await lookup('user', userStr, rootfs, 3) };
  try {
    gid = await lookup('group', groupStr, rootfs);
  } catch (e) {
    throw wrap(`can't find gid for group ${groupStr}: ${(e as Error).message}`);
  }
  return { uid, gid };
}
