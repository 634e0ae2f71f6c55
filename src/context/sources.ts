/**
 * COPY/ADD source resolution, the classic builder's way (moby builder/dockerfile copy.go):
 *
 * - a leading `/` and then a leading `./` are trimmed: sources are relative to the tree root;
 * - a path that climbs out of the root (`../x`) is refused; symlinks are followed but kept inside
 *   the root (an absolute link target means the root);
 * - a source with `*`, `?` or `[` is matched (Go filepath.Match, `*` never crossing `/`) against
 *   every path of the tree in walk order; each match is a source of its own (a matching directory
 *   copies its contents); a pattern that matches nothing adds nothing;
 * - no sources at all → `no source files were specified`; a missing path → `file not found in
 *   build context or excluded by .dockerignore` (paths excluded by .dockerignore do not exist);
 * - more than one resolved source needs a destination ending in `/` (one wildcard match does not);
 * - a relative destination is joined to WORKDIR, keeping a trailing `/`.
 *
 * BuildKit flags on top of that:
 *
 * - `--exclude=PATTERN` (repeatable, .dockerignore syntax): matched against each path as it will
 *   sit under the destination — relative to a directory source, the base name of a wildcard
 *   match, relative to the root or pivot with --parents. A named (non-wildcard) source itself is
 *   never excluded. Excluded entries are neither copied nor hashed; an excluded directory is
 *   skipped whole unless an `!` exception may re-include something under it (it is then only
 *   created when something inside is copied).
 * - `--parents`: each source keeps its path relative to the root — or to a `/./` pivot in the
 *   source — under the destination (always a directory); its missing parent directories are
 *   created with the source directories' metadata.
 */
import { goClean, goJoin } from '../layer/bytes.js';
import { followInScope } from './scope.js';
import { TsbuildError } from '../errors.js';
import type { CopyInstruction } from '../instructions/types.js';
import { PatternMatcher } from './dockerignore.js';
import { containsWildcards, goMatchQuiet } from './gomatch.js';
import { combineSourceHashes, dirHash, hashStringSlice } from './hash.js';
import { Pacer } from '../sys/yield.js';
import { NotDirError, type EntryType, type SourceEntry, type SourceTree } from './tree.js';

export type CopyErrorCode = 'COPY' | 'COPY_NOT_FOUND' | 'COPY_OUTSIDE_CONTEXT' | 'COPY_NO_SOURCES' | 'COPY_DEST_NOT_DIR' | 'NOT_SUPPORTED';

export class CopyError extends TsbuildError {
  constructor(code: CopyErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** One source to copy. */
export interface CopySource {
  tree: SourceTree;
  /** The path as Docker keeps it (root-relative, after trimming); its base name names a file copied into a directory. */
  path: string;
  /** The path with symlinks followed: what is copied. */
  resolved: string;
  /** Type of the resolved entry. */
  type: EntryType;
  /** `file:<hex>`, `dir:<hex>` (or Docker's fallbacks). */
  hash: string;
  /** --exclude: entries inside a directory source that are left out. */
  exclude?: SourceFilter;
}

/** --exclude patterns and where the source sits under the destination ('' : the destination itself). */
export interface SourceFilter {
  matcher: PatternMatcher;
  prefix: string;
}

export type FilterVerdict = 'include' | 'skip' | 'descend';

/**
 * What --exclude says about `rel` (a path inside the source, relative to the tree root) of a
 * source: copy it, skip it (and all below), or only look inside (an excluded directory under
 * which an exception may re-include paths).
 */
export function filterVerdict(src: CopySource, rel: string, isDir: boolean): FilterVerdict {
  const f = src.exclude;
  if (f === undefined) return 'include';
  const inner = src.resolved === '.' ? rel : rel === src.resolved ? '' : rel.slice(src.resolved.length + 1);
  const p = f.prefix === '' ? inner : inner === '' ? f.prefix : `${f.prefix}/${inner}`;
  if (p === '' || !f.matcher.matches(p)) return 'include';
  return isDir && f.matcher.mayReincludeUnder(p) ? 'descend' : 'skip';
}

export interface CopyOperation {
  source: CopySource;
  /** Absolute path in the target rootfs, as normalized by Docker (a trailing `/` is kept and means "into"). */
  dest: string;
  /**
   * --parents: `dest` is the exact path of the source (a file is written there, a directory's
   * contents go into it), and these directories (top first, `dest` itself for a directory
   * source) are created when missing with the metadata of the source directories they mirror.
   */
  parentDirs?: Array<{ dest: string; entry: SourceEntry }>;
}

export interface CopyPlan {
  kind: 'COPY' | 'ADD';
  operations: CopyOperation[];
  /** The destination as written (after build-arg expansion), as history shows it. */
  destAsWritten: string;
  /** Normalized absolute destination (trailing `/` kept). */
  dest: string;
  /** The history hash: one source's own hash or `multi:`. */
  hash: string;
  /** `COPY [--chown=<spec>]<hash> in <dest> ` (container_config.Cmd's comment, without `#(nop) `). */
  historyText: string;
  chown?: string;
  /** `--chown=<user>` without a group: the user's primary group (BuildKit), not a group of that name (classic). */
  chownPrimaryGroup?: boolean;
  chmod?: string;
  /** ADD: local tar archives are extracted (not with --unpack=false). */
  decompress: boolean;
  /** COPY --from without --chown: keep the source's owners. */
  preserveOwnership: boolean;
}

export interface ResolveOptions {
  /** Where sources come from: the build context, or a stage/image rootfs for `--from`. */
  tree: SourceTree;
  /** The stage's WORKDIR (absolute; '' or '/' for none). */
  workdir: string;
  /**
   * false: resolve what to copy but leave every hash '' (no file is read): for a copy whose
   * content hash is computed elsewhere at the same time.
   */
  hashes?: boolean;
}

/** moby urlutil.IsURL. */
export function isURL(s: string): boolean {
  return s.startsWith('http://') || s.startsWith('https://');
}

/** normalizeDest (Linux): a relative destination is joined to WORKDIR; a trailing `/` is kept. */
export function normalizeDest(workdir: string, requested: string): string {
  if (requested.startsWith('/')) return requested;
  let dest = goJoin('/', workdir, requested);
  if (requested.endsWith('/') && !dest.endsWith('/')) dest += '/';
  return dest;
}

/**
 * FollowSymlinkInScope on a source tree: `path` (relative to the root, may hold `..` that stay
 * inside) with every symlink resolved, absolute targets taken relative to the root. Returns a clean
 * relative path ('.' for the root); the path need not exist. Throws NotDirError through a file.
 */
export async function resolveInTree(tree: SourceTree, path: string): Promise<string> {
  const known = plainDirsOf(tree);
  // Start below the deepest ancestor already known to resolve to itself.
  const start = knownAncestor(known, path);
  const resolved = await followInScope(start?.rest ?? path, {
    ...(start !== undefined ? { from: `/${start.dir}` } : {}),
    lstat: async (candidate) => {
      const e = await tree.lstat(candidate.slice(1));
      if (e === undefined) return { kind: 'missing' };
      if (e.type === 'symlink') return { kind: 'symlink', target: e.linkTarget ?? '' };
      return { kind: e.type === 'dir' ? 'dir' : 'other' };
    },
    onPlainDir: (dir) => known.add(dir.slice(1)),
    tooManyLinks: () => new CopyError('COPY', `evalSymlinksInScope: too many links in ${path}`),
  });
  return resolved === '' ? '.' : goClean(resolved.slice(1));
}

/**
 * Per tree, directories known to resolve to themselves (no symlink on the way): walks visit a
 * parent before its children, so an entry then costs an lstat or two instead of one per
 * ancestor, which made a context N levels deep cost O(N³).
 */
const plainDirs = new WeakMap<SourceTree, Set<string>>();

function plainDirsOf(tree: SourceTree): Set<string> {
  let known = plainDirs.get(tree);
  if (known === undefined) plainDirs.set(tree, (known = new Set()));
  return known;
}

/** The deepest ancestor of `path` in `known`, and the rest of the path below it. Pure. */
function knownAncestor(known: Set<string>, path: string): { dir: string; rest: string } | undefined {
  // `..` must be resolved through symlinks, not lexically, and absolute paths made relative:
  // the full walk does both.
  if (known.size === 0 || path.startsWith('/') || /(^|\/)\.\.(\/|$)/.test(path)) return undefined;
  const clean = goClean(path);
  // Usually the parent or a near ancestor is known (walks visit parents first), so few lookups.
  for (let j = clean.lastIndexOf('/'); j > 0; j = clean.lastIndexOf('/', j - 1)) {
    const dir = clean.slice(0, j);
    if (known.has(dir)) return { dir, rest: clean.slice(j + 1) };
  }
  return undefined;
}

function outside(path: string): CopyError {
  // Docker prints the resolved path in parentheses; it is empty when resolution failed.
  return new CopyError('COPY_OUTSIDE_CONTEXT', `forbidden path outside the build context: ${path} ()`);
}

/** FullPath: the resolved path of a source, or the "forbidden path" error. */
async function fullPath(tree: SourceTree, path: string): Promise<string> {
  if (goClean(path).split('/')[0] === '..') throw outside(path);
  try {
    return await resolveInTree(tree, path);
  } catch (e) {
    if (e instanceof NotDirError) throw outside(path);
    throw e;
  }
}

/** Every path under `rel` (itself first), Go filepath.Walk order, symlinks not followed. */
async function walk(tree: SourceTree, rel: string, visit: (rel: string, entry: SourceEntry | undefined) => Promise<void>): Promise<void> {
  const e = await tree.lstat(rel);
  await visit(rel, e);
  if (e === undefined || e.type !== 'dir') return;
  for (const name of await tree.readdir(rel)) await walk(tree, rel === '.' ? name : `${rel}/${name}`, visit);
}

/** archiveContext/lazySource Hash(path): the sum of the path with symlinks followed, or the path itself. */
async function hashOf(tree: SourceTree, path: string): Promise<string> {
  let resolved: string;
  try {
    resolved = await resolveInTree(tree, path);
  } catch {
    return path;
  }
  return (await tree.sum(resolved)) ?? path;
}

/** walkSource + hashStringSlice("dir", …); with --exclude, excluded entries are left out. */
export async function directoryHash(tree: SourceTree, resolvedDir: string, src?: CopySource): Promise<string> {
  const sums: string[] = [];
  if (src?.exclude === undefined) {
    // The walk reaches an entry only through plain directories: unless the entry itself is a
    // symlink (hashOf follows it), it resolves to itself and its sum needs no path walk.
    const pacer = new Pacer();
    const sumOf = async (rel: string, e: SourceEntry | undefined): Promise<void> => {
      if (rel === '.') return;
      await pacer.tick();
      // Known sums (the context's, from its cache) are taken without a promise per entry.
      const known = e !== undefined && e.type !== 'symlink' ? tree.knownSum?.(rel) : undefined;
      sums.push(known ?? (e?.type === 'symlink' || e === undefined ? await hashOf(tree, rel) : ((await tree.sum(rel)) ?? rel)));
    };
    if (tree.entriesUnder !== undefined) for (const e of tree.entriesUnder(resolvedDir)) await sumOf(e.rel, e);
    else await walk(tree, resolvedDir, sumOf);
    return dirHash(sums);
  }
  const visit = async (rel: string): Promise<void> => {
    for (const name of await tree.readdir(rel)) {
      const child = rel === '.' ? name : `${rel}/${name}`;
      const e = await tree.lstat(child);
      if (e === undefined) continue;
      const v = filterVerdict(src, child, e.type === 'dir');
      if (v === 'skip') continue;
      if (v === 'include') sums.push(await hashOf(tree, child));
      if (e.type === 'dir') await visit(child);
    }
  };
  // Like walkSource, the directory itself is hashed (unless it is the root).
  if (resolvedDir !== '.') sums.push(await hashOf(tree, resolvedDir));
  await visit(resolvedDir);
  return dirHash(sums);
}

async function copyInfoForPath(tree: SourceTree, path: string, hashing: boolean): Promise<CopySource> {
  const resolved = await fullPath(tree, path);
  const e = await tree.lstat(resolved).catch((err: unknown) => {
    if (err instanceof NotDirError) return undefined;
    throw err;
  });
  if (e === undefined || e.type === 'symlink') {
    const stat = `stat ${path}: file does not exist`;
    throw new CopyError('COPY_NOT_FOUND', tree.kind === 'context' ? `file not found in build context or excluded by .dockerignore: ${stat}` : stat);
  }
  if (!hashing) return { tree, path, resolved, type: e.type, hash: '' };
  if (e.type !== 'dir') {
    return { tree, path, resolved, type: e.type, hash: `file:${(await tree.sum(resolved)) ?? path}` };
  }
  return { tree, path, resolved, type: 'dir', hash: await directoryHash(tree, resolved) };
}

async function calcCopyInfo(tree: SourceTree, orig: string, allowWildcards: boolean, hashing: boolean, wildcardMatch?: (rel: string, type: EntryType) => Promise<boolean>): Promise<CopySource[]> {
  let path = orig;
  if (path.startsWith('/')) path = path.slice(1);
  if (path.startsWith('./')) path = path.slice(2);
  if (allowWildcards && containsWildcards(path)) {
    const out: CopySource[] = [];
    await walk(tree, '.', async (rel) => {
      if (rel === '.' || !goMatchQuiet(path, rel)) return;
      if (wildcardMatch !== undefined) {
        const e = await tree.lstat(rel);
        if (e !== undefined && !(await wildcardMatch(rel, e.type))) return;
      }
      out.push(...(await calcCopyInfo(tree, rel, false, hashing)));
    });
    return out;
  }
  return [await copyInfoForPath(tree, path, hashing)];
}

/** A --parents source split at its `/./` pivot: the pivot (root-relative, '.' for the root) and the rest. */
export function splitPivot(source: string): { pivot: string; rest: string } {
  let p = source;
  while (p.startsWith('/')) p = p.slice(1);
  const i = p.indexOf('/./');
  if (i < 0) return { pivot: '.', rest: p };
  return { pivot: goClean(p.slice(0, i) === '' ? '.' : p.slice(0, i)), rest: p.slice(i + 3) };
}

/** `path` relative to `base` (both clean, root-relative); undefined when it is not inside. */
function relativeTo(base: string, path: string): string | undefined {
  if (base === '.') return path;
  if (path === base) return '.';
  return path.startsWith(`${base}/`) ? path.slice(base.length + 1) : undefined;
}

/**
 * Resolve a COPY/ADD instruction's sources (already expanded, as the planner leaves them) against
 * a source tree. Errors read like Docker's (`COPY failed: …`).
 */
export async function resolveCopy(instr: CopyInstruction, opts: ResolveOptions): Promise<CopyPlan> {
  const cmd = instr.kind;
  if (instr.heredocs.length > 0) throw new CopyError('NOT_SUPPORTED', `${cmd} from a heredoc is not supported yet`);
  const matcher = instr.exclude.length > 0 ? new PatternMatcher(instr.exclude) : undefined;
  const dest = normalizeDest(opts.workdir, instr.dest);
  const hashing = opts.hashes !== false;

  const sources: CopySource[] = [];
  const operations: CopyOperation[] = [];
  const hashes: string[] = [];
  // Sources --exclude left out: a copy of nothing is then not an error.
  let dropped = 0;
  try {
    for (const orig of instr.sources) {
      if (isURL(orig)) {
        if (cmd === 'COPY') throw new CopyError('COPY', "source can't be a URL for COPY");
        throw new CopyError('NOT_SUPPORTED', `downloading ${orig} is not supported yet`);
      }
      if (!instr.parents) {
        // A wildcard match is tested by its base name (the name it gets under the destination).
        const keep = matcher === undefined ? undefined : async (rel: string, type: EntryType) => {
          const name = rel.slice(rel.lastIndexOf('/') + 1);
          const ok = !matcher.matches(name) || (type === 'dir' && matcher.mayReincludeUnder(name));
          if (!ok) dropped++;
          return ok;
        };
        for (const src of await calcCopyInfo(opts.tree, orig, true, hashing, keep)) {
          if (matcher !== undefined) {
            src.exclude = { matcher, prefix: '' };
            if (src.type === 'dir' && hashing) src.hash = await directoryHash(opts.tree, src.resolved, src);
          }
          sources.push(src);
          operations.push({ source: src, dest });
          hashes.push(src.hash);
        }
        continue;
      }
      const { pivot, rest } = splitPivot(orig);
      const relOf = (p: string): string | undefined => relativeTo(pivot, goClean(p));
      const keep = async (rel: string, type: EntryType): Promise<boolean> => {
        const r = relOf(rel);
        if (r === undefined) return false;
        const ok = matcher === undefined || !matcher.matches(r) || (type === 'dir' && matcher.mayReincludeUnder(r));
        if (!ok) dropped++;
        return ok;
      };
      const full = pivot === '.' ? rest : `${pivot}/${rest}`;
      for (const src of await calcCopyInfo(opts.tree, full, true, hashing, keep)) {
        const rel = relOf(src.path);
        if (rel === undefined) throw new CopyError('COPY', `${orig}: the source is not under its pivot ${pivot}`);
        if (matcher !== undefined && rel !== '.') {
          const excluded = matcher.matches(rel) && !(src.type === 'dir' && matcher.mayReincludeUnder(rel));
          if (excluded) {
            dropped++;
            continue;
          }
        }
        if (matcher !== undefined) {
          src.exclude = { matcher, prefix: rel === '.' ? '' : rel };
          if (src.type === 'dir' && hashing) src.hash = await directoryHash(opts.tree, src.resolved, src);
        }
        const target = rel === '.' ? dest : goJoin(dest, rel);
        const parentDirs: Array<{ dest: string; entry: SourceEntry }> = [];
        const segs = rel === '.' ? [] : rel.split('/');
        // The directories between the destination and the source (the source itself when a directory).
        const upto = src.type === 'dir' ? segs.length : segs.length - 1;
        for (let i = 1; i <= upto; i++) {
          const sub = segs.slice(0, i).join('/');
          const at = pivot === '.' ? sub : `${pivot}/${sub}`;
          const entry = i === segs.length ? await opts.tree.lstat(src.resolved) : await opts.tree.lstat(await resolveInTree(opts.tree, at));
          if (entry !== undefined && entry.type === 'dir') parentDirs.push({ dest: goJoin(dest, sub), entry });
        }
        sources.push(src);
        operations.push({ source: src, dest: target, parentDirs });
        // The path under the destination is part of what is copied: hash it with the content.
        hashes.push(hashStringSlice('parents', [rel, src.hash]));
      }
    }
    if (sources.length === 0 && dropped === 0) throw new CopyError('COPY_NO_SOURCES', 'no source files were specified');
  } catch (e) {
    if (e instanceof CopyError) throw new CopyError(e.code as CopyErrorCode, `${cmd} failed: ${e.message}`, { cause: e });
    throw e;
  }
  if (sources.length > 1 && !instr.dest.endsWith('/')) {
    throw new CopyError('COPY_DEST_NOT_DIR', `When using ${cmd} with more than one source file, the destination must be a directory and end with a /`);
  }
  const hash = combineSourceHashes(hashes.length > 0 ? hashes : [hashStringSlice('dir', [])]);
  const chownComment = instr.chown !== undefined && instr.chown !== '' ? `--chown=${instr.chown}` : '';
  const plan: CopyPlan = {
    kind: cmd,
    operations,
    destAsWritten: instr.dest,
    dest,
    hash,
    historyText: `${cmd} ${chownComment}${hash} in ${instr.dest} `,
    decompress: cmd === 'ADD' && instr.unpack !== false,
    preserveOwnership: instr.from !== undefined && (instr.chown === undefined || instr.chown === ''),
  };
  if (instr.chown !== undefined && instr.chown !== '') plan.chown = instr.chown;
  if (instr.chownPrimaryGroup) plan.chownPrimaryGroup = true;
  if (instr.chmod !== undefined && instr.chmod !== '') plan.chmod = instr.chmod;
  return plan;
}
