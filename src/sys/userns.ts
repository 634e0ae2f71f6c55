/**
 * User namespaces: whether this process runs in one, and the id mapping rootless tsbuild asks
 * for (like rootless dockerd: the caller's uid/gid become 0, its first /etc/subuid and
 * /etc/subgid ranges become 1…count, via the setuid helpers newuidmap/newgidmap).
 */
import { existsSync, readFileSync } from 'node:fs';

/** One line of /proc/<pid>/uid_map: ids inner…inner+count-1 are outer…outer+count-1 outside. */
export interface IdMapEntry {
  inner: number;
  outer: number;
  count: number;
}

export interface SubIdRange {
  start: number;
  count: number;
}

/**
 * 'subid': 0 → the caller, 1…count → its subordinate range (any owner up to count can exist);
 * 'single': only 0 → the caller (no newuidmap or no range: files owned by others cannot be made).
 */
export interface UsernsMapping {
  mode: 'subid' | 'single';
  uid: IdMapEntry[];
  gid: IdMapEntry[];
}

/** Parses /proc/<pid>/uid_map (or gid_map). */
export function parseIdMap(text: string): IdMapEntry[] {
  const out: IdMapEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) continue;
    const [inner, outer, count] = f.map(Number) as [number, number, number];
    if ([inner, outer, count].every(Number.isInteger)) out.push({ inner, outer, count });
  }
  return out;
}

/** True unless the map is the initial namespace's identity map of all 2^32-1 ids. */
export function isUserNamespaceMap(map: readonly IdMapEntry[]): boolean {
  return !(map.length === 1 && map[0]!.inner === 0 && map[0]!.outer === 0 && map[0]!.count === 4294967295);
}

let cached: boolean | undefined;

/**
 * Whether this process is in a user namespace other than the initial one. There trusted.* xattrs
 * cannot be set and device nodes cannot be made, so overlay runs with `userxattr` (opaque dirs
 * are `user.overlay.opaque`, as rootless dockerd writes them) and the sandbox binds /dev nodes.
 */
export function inUserNamespace(): boolean {
  if (cached === undefined) {
    try {
      cached = isUserNamespaceMap(parseIdMap(readFileSync('/proc/self/uid_map', 'utf8')));
    } catch {
      cached = false; // no /proc: assume the initial namespace
    }
  }
  return cached;
}

/** The first range of `user` (by name or numeric id) in an /etc/subuid or /etc/subgid text. */
export function findSubIdRange(text: string, name: string, id: number): SubIdRange | undefined {
  for (const line of text.split('\n')) {
    const f = line.trim().split(':');
    if (f.length !== 3 || (f[0] !== name && f[0] !== String(id))) continue;
    const start = Number(f[1]);
    const count = Number(f[2]);
    if (Number.isInteger(start) && Number.isInteger(count) && start > 0 && count > 0) return { start, count };
  }
  return undefined;
}

/** The mapping for a caller with these ids and (optional) subordinate ranges. Pure. */
export function planMapping(uid: number, gid: number, subuid: SubIdRange | undefined, subgid: SubIdRange | undefined): UsernsMapping {
  if (subuid === undefined || subgid === undefined) {
    return { mode: 'single', uid: [{ inner: 0, outer: uid, count: 1 }], gid: [{ inner: 0, outer: gid, count: 1 }] };
  }
  return {
    mode: 'subid',
    uid: [
      { inner: 0, outer: uid, count: 1 },
      { inner: 1, outer: subuid.start, count: subuid.count },
    ],
    gid: [
      { inner: 0, outer: gid, count: 1 },
      { inner: 1, outer: subgid.start, count: subgid.count },
    ],
  };
}

/** util-linux 2.38 `unshare` flags that create the user namespace with this mapping. */
export function unshareUserArgs(m: UsernsMapping): string[] {
  const args = ['--user', '--map-root-user'];
  const range = (entries: IdMapEntry[]) => entries.find((e) => e.inner === 1);
  const u = range(m.uid);
  const g = range(m.gid);
  if (u !== undefined && g !== undefined) args.push(`--map-users=${u.outer},1,${u.count}`, `--map-groups=${g.outer},1,${g.count}`);
  return args;
}

/** The id inside the namespace for a host id, or undefined when it is not mapped. */
export function innerId(map: readonly IdMapEntry[], outer: number): number | undefined {
  for (const e of map) if (outer >= e.outer && outer < e.outer + e.count) return e.inner + (outer - e.outer);
  return undefined;
}

export interface HostIds {
  uid: number;
  gid: number;
  user: string;
  subuidText?: string;
  subgidText?: string;
  /** newuidmap and newgidmap (Debian package uidmap) are installed. */
  helpers: boolean;
}

/** Reads what planMapping needs from this host. */
export function hostIds(uid: number, gid: number, user: string): HostIds {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return undefined;
    }
  };
  const which = (tool: string) => ['/usr/bin/', '/bin/', '/usr/sbin/', '/sbin/'].some((d) => existsSync(d + tool));
  const out: HostIds = { uid, gid, user, helpers: which('newuidmap') && which('newgidmap') };
  const su = read('/etc/subuid');
  const sg = read('/etc/subgid');
  if (su !== undefined) out.subuidText = su;
  if (sg !== undefined) out.subgidText = sg;
  return out;
}

/** The mapping to use on this host: subordinate ranges when the helpers and both ranges exist. */
export function mappingFor(h: HostIds): UsernsMapping {
  const subuid = h.helpers && h.subuidText !== undefined ? findSubIdRange(h.subuidText, h.user, h.uid) : undefined;
  const subgid = h.helpers && h.subgidText !== undefined ? findSubIdRange(h.subgidText, h.user, h.uid) : undefined;
  return planMapping(h.uid, h.gid, subuid, subgid);
}
