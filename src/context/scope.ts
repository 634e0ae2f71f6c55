/**
 * FollowSymlinkInScope (moby/sys/symlink), the walk alone: the caller says what each path is
 * (a source tree, a rootfs on disk, an archive's destination), this resolves symlinks and `..`
 * without ever leaving the scope's root.
 */

export type ScopeEntry = { kind: 'symlink'; target: string } | { kind: 'dir' | 'other' | 'missing' };

export interface ScopeWalk {
  /** What `candidate` ('/a/b', inside the scope) is; a symlink with its target. */
  lstat(candidate: string): Promise<ScopeEntry>;
  /** The error for a symlink chain longer than 255 links. */
  tooManyLinks(): Error;
  /** An already resolved dir ('/a/b') to start below, `path` being relative to it. */
  from?: string;
  /** Each dir passed before the first symlink or `..`: it resolves to itself. */
  onPlainDir?(dir: string): void;
}

/**
 * `path` with every symlink followed, absolute link targets and `..` kept inside the scope;
 * missing components are fine. Returns '' for the scope's root, else '/a/b' (not cleaned).
 */
export async function followInScope(path: string, walk: ScopeWalk): Promise<string> {
  let plain = true;
  let resolved = walk.from ?? '';
  let rest = path;
  let links = 0;
  while (rest !== '') {
    const i = rest.indexOf('/');
    const part = i < 0 ? rest : rest.slice(0, i);
    rest = i < 0 ? '' : rest.slice(i + 1);
    if (part === '' || part === '.') continue;
    if (part === '..') {
      plain = false;
      resolved = resolved.slice(0, Math.max(0, resolved.lastIndexOf('/')));
      continue;
    }
    const candidate = `${resolved}/${part}`;
    const entry = await walk.lstat(candidate);
    if (entry.kind !== 'symlink') {
      if (plain && entry.kind === 'dir') walk.onPlainDir?.(candidate);
      resolved = candidate;
      continue;
    }
    plain = false;
    if (++links > 255) throw walk.tooManyLinks();
    if (entry.target.startsWith('/')) resolved = '';
    rest = rest === '' ? entry.target : `${entry.target}/${rest}`;
  }
  return resolved;
}
