/**
 * Where the entries of an ADD archive land, checked the way moby's pkg/archive Unpack checks them
 * (chrooted into the destination): a name that climbs out with `..` is a breakout error (absolute
 * names are made relative), so is a symlink whose target, joined to its own directory, climbs out,
 * and a hardlink whose target, joined to the destination, does; writing through a symlink whose
 * target does not exist fails (Docker's MkdirAll/open fail there too) instead of creating it.
 *
 * Parent directories are resolved once and cached: resolving every entry from the destination down
 * made a 2,000-level tree cost millions of lstat calls on ever longer paths.
 */
import { chmod, lchown, lstat, mkdir, readlink, stat } from 'node:fs/promises';
import { CopyError } from '../context/sources.js';
import { goClean } from '../layer/bytes.js';
import { hostPathOf } from './copy-paths.js';
import { followInScope } from '../context/scope.js';

/*
 * Paths here are byte strings (one char per byte, as tar names are read), so names that are not
 * UTF-8 reach the disk unchanged; fsPath turns one into the Buffer the fs calls take.
 */
export function fsPath(p: string): Buffer {
  return Buffer.from(p, 'latin1');
}

/** A JS (UTF-16) path as a byte string. */
export function byteString(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** A name for messages: quoted, and shortened when a hostile archive made it huge. */
export function quoted(name: string): string {
  const text = Buffer.from(name, 'latin1').toString('utf8');
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 96)}…${text.slice(-96)}` : text);
}

/** Whether `path` (relative) goes above its starting point at some `..` (Go's Clean would keep a leading `..`). */
export function climbsOut(path: string): boolean {
  let depth = 0;
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (--depth < 0) return true;
    } else depth++;
  }
  return false;
}

function breakout(what: string): CopyError {
  return new CopyError('COPY', `${what}: it points outside of the destination (refusing to unpack)`);
}

/** The entry's clean path relative to the destination ('' for the destination itself), or a breakout error. */
export function entryRelPath(name: string): string {
  if (!name.startsWith('/') && climbsOut(name)) throw breakout(`archive entry ${quoted(name)} is outside of the destination`);
  return goClean(`/${name}`).slice(1);
}

/** Symlink targets are checked against the entry's own directory (relative and absolute alike, as Docker joins them). */
export function checkSymlink(rel: string, linkname: string): void {
  const slash = rel.lastIndexOf('/');
  const dir = slash < 0 ? '' : rel.slice(0, slash);
  if (climbsOut(`${dir}/${linkname}`)) throw breakout(`archive entry ${quoted(rel)}: invalid symlink to ${quoted(linkname)}`);
}

/** Hardlink targets are relative to the destination; returns the target's clean path there ('/…'). */
export function hardlinkTarget(rel: string, linkname: string): string {
  if (climbsOut(linkname)) throw breakout(`archive entry ${quoted(rel)}: invalid hardlink to ${quoted(linkname)}`);
  return goClean(`/${linkname}`);
}

async function lstatOrUndefined(p: string, follow = false) {
  try {
    return await (follow ? stat(fsPath(p)) : lstat(fsPath(p)));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/**
 * `path` ('/…') inside `root` with every symlink followed without leaving it (a chroot's view,
 * FollowSymlinkInScope); missing components are fine. Byte strings in and out.
 */
export async function resolveInDest(root: string, path: string): Promise<string> {
  const resolved = await followInScope(path, {
    lstat: async (candidate) => {
      const st = await lstatOrUndefined(root + candidate);
      if (st === undefined) return { kind: 'missing' };
      if (st.isSymbolicLink()) return { kind: 'symlink', target: (await readlink(fsPath(root + candidate), { encoding: 'buffer' })).toString('latin1') };
      return { kind: st.isDirectory() ? 'dir' : 'other' };
    },
    tooManyLinks: () => new CopyError('COPY', `too many levels of symbolic links in ${quoted(path)}`),
  });
  return resolved === '' ? '/' : resolved;
}

/** Resolves (and creates) the parent directories of archive entries inside `destHost`. */
export class ParentDirs {
  /** Entry-relative dir path → its resolved path in the destination ('/…'); each an existing directory. */
  private readonly dirs = new Map<string, string>([['', '/']]);

  /** `destHost`: the destination on the host, a byte string. */
  constructor(private readonly destHost: string) {}

  private host(p: string): string {
    return hostPathOf(this.destHost, p);
  }

  /** Forget every resolution: something on the way may have been replaced. */
  invalidate(): void {
    this.dirs.clear();
    this.dirs.set('', '/');
  }

  /** Record a directory the archive just created (or merged) at `rel`, resolved to `path`. */
  noteDir(rel: string, path: string): void {
    this.dirs.set(rel, path);
  }

  /**
   * The resolved path ('/…') of the directory that will hold entry `rel` ('a/b/c' → 'a/b'), with
   * missing directories created 0755 root:root like Unpack's MkdirAllAndChownNew.
   */
  async parentOf(rel: string): Promise<string> {
    const slash = rel.lastIndexOf('/');
    const parentRel = slash < 0 ? '' : rel.slice(0, slash);
    // The longest prefix already resolved: for archives in tar order, the parent itself.
    let known = parentRel;
    let hit = this.dirs.get(known);
    while (hit === undefined) {
      const i = known.lastIndexOf('/');
      known = i < 0 ? '' : known.slice(0, i);
      hit = this.dirs.get(known);
    }
    if (known === parentRel) return hit;
    let cur: string = hit;
    let key = known;
    let missing = false;
    for (const part of parentRel.slice(known === '' ? 0 : known.length + 1).split('/')) {
      key = key === '' ? part : `${key}/${part}`;
      const candidate: string = cur === '/' ? `/${part}` : `${cur}/${part}`;
      const st = missing ? undefined : await lstatOrUndefined(this.host(candidate));
      if (st === undefined) {
        missing = true;
        const host = fsPath(this.host(candidate));
        await mkdir(host);
        await chmod(host, 0o755);
        await lchown(host, 0, 0);
        cur = candidate;
      } else if (st.isDirectory()) {
        cur = candidate;
      } else if (st.isSymbolicLink()) {
        const target = await resolveInDest(this.destHost, candidate);
        const found = await lstatOrUndefined(this.host(target), true);
        if (found === undefined) throw new CopyError('COPY', `archive entry ${quoted(rel)} is written through the symlink ${quoted(`/${key}`)}, whose target ${quoted(target)} does not exist`);
        if (!found.isDirectory()) throw new CopyError('COPY', `archive entry ${quoted(rel)}: ${quoted(`/${key}`)} is not a directory`);
        cur = target;
      } else {
        throw new CopyError('COPY', `archive entry ${quoted(rel)}: ${quoted(`/${key}`)} is not a directory`);
      }
      this.dirs.set(key, cur);
    }
    return cur;
  }
}
