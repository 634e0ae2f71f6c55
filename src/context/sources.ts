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
 */
import { goClean, goJoin } from '../layer/bytes.js';
import { TsbuildError } from '../errors.js';
import type { CopyInstruction } from '../instructions/types.js';
import { containsWildcards, goMatchQuiet } from './gomatch.js';
import { combineSourceHashes, dirHash } from './hash.js';
import { NotDirError, type EntryType, type SourceTree } from './tree.js';

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
}

export interface CopyOperation {
  source: CopySource;
  /** Absolute path in the target rootfs, as normalized by Docker (a trailing `/` is kept and means "into"). */
  dest: string;
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
  chmod?: string;
  /** ADD: local tar archives are extracted. */
  decompress: boolean;
  /** COPY --from without --chown: keep the source's owners. */
  preserveOwnership: boolean;
}

export interface ResolveOptions {
  /** Where sources come from: the build context, or a stage/image rootfs for `--from`. */
  tree: SourceTree;
  /** The stage's WORKDIR (absolute; '' or '/' for none). */
  workdir: string;
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
  let resolved = '';
  let rest = path;
  let links = 0;
  while (rest !== '') {
    const i = rest.indexOf('/');
    const part = i < 0 ? rest : rest.slice(0, i);
    rest = i < 0 ? '' : rest.slice(i + 1);
    if (part === '' || part === '.') continue;
    if (part === '..') {
      const j = resolved.lastIndexOf('/');
      resolved = j < 0 ? '' : resolved.slice(0, j);
      continue;
    }
    const candidate = resolved === '' ? part : `${resolved}/${part}`;
    const e = await tree.lstat(candidate);
    if (e === undefined || e.type !== 'symlink') {
      resolved = candidate;
      continue;
    }
    if (++links > 255) throw new CopyError('COPY', `evalSymlinksInScope: too many links in ${path}`);
    const target = e.linkTarget ?? '';
    if (target.startsWith('/')) resolved = '';
    rest = rest === '' ? target : `${target}/${rest}`;
  }
  return resolved === '' ? '.' : goClean(resolved);
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
async function walk(tree: SourceTree, rel: string, visit: (rel: string) => Promise<void>): Promise<void> {
  await visit(rel);
  const e = await tree.lstat(rel);
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

/** walkSource + hashStringSlice("dir", …). */
export async function directoryHash(tree: SourceTree, resolvedDir: string): Promise<string> {
  const sums: string[] = [];
  await walk(tree, resolvedDir, async (rel) => {
    if (rel === '.') return;
    sums.push(await hashOf(tree, rel));
  });
  return dirHash(sums);
}

async function copyInfoForPath(tree: SourceTree, path: string): Promise<CopySource> {
  const resolved = await fullPath(tree, path);
  const e = await tree.lstat(resolved).catch((err: unknown) => {
    if (err instanceof NotDirError) return undefined;
    throw err;
  });
  if (e === undefined || e.type === 'symlink') {
    const stat = `stat ${path}: file does not exist`;
    throw new CopyError('COPY_NOT_FOUND', tree.kind === 'context' ? `file not found in build context or excluded by .dockerignore: ${stat}` : stat);
  }
  if (e.type !== 'dir') {
    return { tree, path, resolved, type: e.type, hash: `file:${(await tree.sum(resolved)) ?? path}` };
  }
  return { tree, path, resolved, type: 'dir', hash: await directoryHash(tree, resolved) };
}

async function calcCopyInfo(tree: SourceTree, orig: string, allowWildcards: boolean): Promise<CopySource[]> {
  let path = orig;
  if (path.startsWith('/')) path = path.slice(1);
  if (path.startsWith('./')) path = path.slice(2);
  if (allowWildcards && containsWildcards(path)) {
    const out: CopySource[] = [];
    await walk(tree, '.', async (rel) => {
      if (rel === '.' || !goMatchQuiet(path, rel)) return;
      out.push(...(await calcCopyInfo(tree, rel, false)));
    });
    return out;
  }
  return [await copyInfoForPath(tree, path)];
}

/**
 * Resolve a COPY/ADD instruction's sources (already expanded, as the planner leaves them) against
 * a source tree. Errors read like Docker's (`COPY failed: …`).
 */
export async function resolveCopy(instr: CopyInstruction, opts: ResolveOptions): Promise<CopyPlan> {
  const cmd = instr.kind;
  if (instr.heredocs.length > 0) throw new CopyError('NOT_SUPPORTED', `${cmd} from a heredoc is not supported yet`);
  if (instr.parents) throw new CopyError('NOT_SUPPORTED', `${cmd} --parents is not supported yet`);
  if (instr.exclude.length > 0) throw new CopyError('NOT_SUPPORTED', `${cmd} --exclude is not supported yet`);

  const sources: CopySource[] = [];
  try {
    for (const orig of instr.sources) {
      if (isURL(orig)) {
        if (cmd === 'COPY') throw new CopyError('COPY', "source can't be a URL for COPY");
        throw new CopyError('NOT_SUPPORTED', `downloading ${orig} is not supported yet`);
      }
      sources.push(...(await calcCopyInfo(opts.tree, orig, true)));
    }
    if (sources.length === 0) throw new CopyError('COPY_NO_SOURCES', 'no source files were specified');
  } catch (e) {
    if (e instanceof CopyError) throw new CopyError(e.code as CopyErrorCode, `${cmd} failed: ${e.message}`, { cause: e });
    throw e;
  }
  if (sources.length > 1 && !instr.dest.endsWith('/')) {
    throw new CopyError('COPY_DEST_NOT_DIR', `When using ${cmd} with more than one source file, the destination must be a directory and end with a /`);
  }
  const dest = normalizeDest(opts.workdir, instr.dest);
  const hash = combineSourceHashes(sources.map((s) => s.hash));
  const chownComment = instr.chown !== undefined && instr.chown !== '' ? `--chown=${instr.chown}` : '';
  const plan: CopyPlan = {
    kind: cmd,
    operations: sources.map((source) => ({ source, dest })),
    destAsWritten: instr.dest,
    dest,
    hash,
    historyText: `${cmd} ${chownComment}${hash} in ${instr.dest} `,
    decompress: cmd === 'ADD',
    preserveOwnership: instr.from !== undefined && (instr.chown === undefined || instr.chown === ''),
  };
  if (instr.chown !== undefined && instr.chown !== '') plan.chown = instr.chown;
  if (instr.chmod !== undefined && instr.chmod !== '') plan.chmod = instr.chmod;
  return plan;
}
