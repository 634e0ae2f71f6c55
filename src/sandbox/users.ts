/**
 * USER and COPY --chown resolution against a rootfs's /etc/passwd and /etc/group, given as text
 * (undefined = the file does not exist). Pure: no filesystem access.
 *
 * - resolveUser reproduces moby/sys/user GetExecUser (what dockerd's getUser in daemon/oci_linux.go
 *   calls with the container's /etc/passwd and /etc/group) and getUser's additional gids (the
 *   primary gid first, then the supplementary groups), plus HOME the way runc fills it in.
 * - resolveChown reproduces the classic builder's parseChownFlag (builder/dockerfile/
 *   internals_linux.go): a lone name is looked up both as user and as *group* name.
 */
import { TsbuildError } from '../errors.js';

export class UserLookupError extends TsbuildError {
  constructor(message: string) {
    super('USER_LOOKUP', message);
  }
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ExecUser {
  uid: number;
  gid: number;
  /** What Docker gives the process: [gid, ...supplementary groups from /etc/group membership]. */
  additionalGids: number[];
  /** runc's HOME when the env has none: the home of the first passwd entry with this uid, else "/". */
  home: string;
}

const MAX_ID = 2 ** 31 - 1;
const INT64_MAX = 2 ** 63 - 1;

/** Go strconv.Atoi: optional sign, ASCII digits; range errors clamp (parseLine ignores the error). */
function goAtoi(s: string): { value: number; ok: boolean; range: boolean } {
  if (!/^[+-]?[0-9]+$/.test(s)) return { value: 0, ok: false, range: false };
  const n = Number(s);
  if (Math.abs(n) > INT64_MAX) return { value: n < 0 ? -INT64_MAX - 1 : INT64_MAX, ok: false, range: true };
  return { value: n, ok: true, range: false };
}

/** Go's unicode.IsSpace set (unlike JS \\s it has U+0085 and lacks U+FEFF). */
const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const GO_SPACE_EDGES = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, 'g');

/** Go's bufio.Scanner lines, TrimSpace'd. */
function lines(text: string): string[] {
  return text.split('\n').map((l) => l.replace(GO_SPACE_EDGES, ''));
}

/** moby/sys/user ParsePasswdFilter: no comment handling, missing/non-numeric ids are 0. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of lines(text)) {
    if (line === '') continue;
    const f = line.split(':');
    out.push({ name: f[0] ?? '', uid: goAtoi(f[2] ?? '').value, gid: goAtoi(f[3] ?? '').value, home: f[5] ?? '' });
  }
  return out;
}

/** moby/sys/user ParseGroupFilter: `#` lines skipped, members comma-separated. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of lines(text)) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    const list = f[3] ?? '';
    out.push({ name: f[0] ?? '', gid: goAtoi(f[2] ?? '').value, members: list === '' ? [] : list.split(',') });
  }
  return out;
}

/** moby/sys/user parseNumeric. */
function parseNumeric(val: string): { id: number; numeric: boolean } {
  if (val === '') return { id: 0, numeric: false };
  const r = goAtoi(val);
  if (r.range) throw new UserLookupError(`uids and gids must be in range 0-${MAX_ID}`);
  if (!r.ok) return { id: 0, numeric: false };
  if (r.value < 0 || r.value > MAX_ID) throw new UserLookupError(`uids and gids must be in range 0-${MAX_ID}`);
  return { id: r.value, numeric: true };
}

/**
 * Docker's USER semantics: '' (root, with root's passwd entry), 'name', 'uid', 'name:group',
 * 'uid:gid', 'name:gid', 'uid:group'. A numeric uid missing from passwd is fine (gid 0); an
 * unknown name is `unable to find user NAME: no matching entries in passwd file`. Supplementary
 * groups come from /etc/group membership only when no group is given.
 */
export function resolveUser(userSpec: string, passwd: string | undefined, group: string | undefined): ExecUser {
  const fields = userSpec.split(':');
  const userArg = fields[0] ?? '';
  const groupArg = fields[1] ?? '';
  const u = parseNumeric(userArg);
  const g = parseNumeric(groupArg);

  let uid = 0;
  let gid = 0;
  let sgids: number[] = [];
  const users = passwd === undefined ? [] : parsePasswd(passwd);
  const match = users.find((e) => (userArg === '' ? e.uid === 0 : u.numeric ? e.uid === u.id : e.name === userArg));
  let matchedName = '';
  if (match !== undefined) {
    matchedName = match.name;
    uid = match.uid;
    gid = match.gid;
  } else if (userArg !== '') {
    if (!u.numeric) throw new UserLookupError(`unable to find user ${userArg}: no matching entries in passwd file`);
    uid = u.id;
  }

  if (groupArg !== '' || matchedName !== '') {
    const groups = (group === undefined ? [] : parseGroup(group)).filter((e) => {
      if (groupArg === '') return e.members.includes(matchedName);
      return g.numeric ? e.gid === g.id : e.name === groupArg;
    });
    if (groupArg !== '') {
      const first = groups[0];
      if (first !== undefined) gid = first.gid;
      else if (!g.numeric) throw new UserLookupError(`unable to find group ${groupArg}: no matching entries in group file`);
      else gid = g.id;
    } else if (groups.length > 0) {
      sgids = groups.map((e) => e.gid);
    }
  }

  const homeEntry = users.find((e) => e.uid === uid);
  return { uid, gid, additionalGids: [gid, ...sgids], home: homeEntry !== undefined ? homeEntry.home : '/' };
}

/**
 * COPY/ADD --chown: `user`, `user:group`, numeric or names. A lone `x` means `x:x` — the group is
 * looked up by that *name* in /etc/group (not the user's primary group), numeric ids are taken as
 * they are. Name lookups need the file: a missing /etc/passwd or /etc/group is an error there.
 * Messages are the classic builder's (`can't find uid for user app: no such user: app`).
 * Negative ids (Go accepts `-1`, which chown then treats as "unchanged") are refused.
 */
export function resolveChown(chown: string, passwd: string | undefined, group: string | undefined): { uid: number; gid: number } {
  const parts = chown.split(':');
  if (parts.length > 2) throw new UserLookupError(`invalid chown string format: ${chown}`);
  const userStr = parts[0] ?? '';
  const grpStr = parts.length === 1 ? userStr : (parts[1] ?? '');

  const lookup = (
    str: string,
    kind: 'uid' | 'gid',
    file: string | undefined,
    path: string,
    find: (text: string) => number | undefined,
  ): number => {
    const what = kind === 'uid' ? `user ${str}` : `group ${str}`;
    const n = goAtoi(str);
    if (n.ok) {
      if (n.value < 0 || n.value > 2 ** 32 - 2) throw new UserLookupError(`can't find ${kind} for ${what}: invalid id ${str}`);
      return n.value;
    }
    if (file === undefined) throw new UserLookupError(`can't find ${kind} for ${what}: open ${path}: no such file or directory`);
    const id = find(file);
    if (id === undefined) throw new UserLookupError(`can't find ${kind} for ${what}: no such ${kind === 'uid' ? 'user' : 'group'}: ${str}`);
    return id;
  };

  const uid = lookup(userStr, 'uid', passwd, '/etc/passwd', (t) => parsePasswd(t).find((e) => e.name === userStr)?.uid);
  const gid = lookup(grpStr, 'gid', group, '/etc/group', (t) => parseGroup(t).find((e) => e.name === grpStr)?.gid);
  return { uid, gid };
}
