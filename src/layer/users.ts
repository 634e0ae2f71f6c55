/** uid/gid → user/group names for tar headers (Go's archive/tar FileInfoHeader looks them up on the host). */
import { readFileSync } from 'node:fs';

export interface NameLookup {
  user(uid: number): string | undefined;
  group(gid: number): string | undefined;
}

/**
 * Parse passwd/group text: the first line whose third field is the id wins (like getpwuid over
 * NSS `files`). Comment lines and NIS `+`/`-` lines are skipped. passwd lines need 7 fields (Go's
 * pure-Go lookup needs 6+ colons), group lines 4.
 */
export function parseIdFile(text: string, minFields: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split(':');
    if (parts.length < minFields) continue;
    const name = parts[0] ?? '';
    if (name === '' || name.startsWith('+') || name.startsWith('-')) continue;
    const idText = parts[2] ?? '';
    if (!/^\d+$/.test(idText)) continue;
    const id = Number(idText);
    if (!out.has(id)) out.set(id, name);
  }
  return out;
}

/** A NameLookup over given passwd and group file contents. */
export function nameLookupFrom(passwd: string, group: string): NameLookup {
  const users = parseIdFile(passwd, 7);
  const groups = parseIdFile(group, 4);
  return { user: (uid) => users.get(uid), group: (gid) => groups.get(gid) };
}

let hostLookup: NameLookup | undefined;

/** The host's /etc/passwd and /etc/group, read once per process (missing files: no names). */
export function hostNameLookup(): NameLookup {
  if (hostLookup === undefined) {
    const read = (p: string): string => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return '';
      }
    };
    hostLookup = nameLookupFrom(read('/etc/passwd'), read('/etc/group'));
  }
  return hostLookup;
}

/** No names at all (uname/gname left empty). */
export const NO_NAMES: NameLookup = { user: () => undefined, group: () => undefined };
