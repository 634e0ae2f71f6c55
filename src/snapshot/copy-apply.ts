/**
 * Plain-directory rootfs helpers of the copy snapshotter: applying an overlay2 layer dir onto a
 * directory (overlay's merge rules, made permanent; hard links are broken as overlay's copy-up
 * breaks them, so a file linked under two names in the image shows nlink 1), copying selected entries between trees with
 * everything preserved, and checking the init layer's mount points of a plain rootfs.
 *
 * Paths inside a tree are "byte strings" (latin1 JS strings, see layer/bytes.ts): file names are
 * arbitrary bytes. Copies go through GNU tar (pax format: modes, owners, ns times, hard links within
 * the copied set, devices, fifos, symlinks, all xattrs), never through reflinks or hard links to
 * the source, so a RUN that writes in place cannot touch a stored layer.
 */
import { spawn } from 'node:child_process';
import type { BigIntStats, Stats } from 'node:fs';
import { lchown, lstat, mkdir, open, readdir, rm, symlink } from 'node:fs/promises';
import { TsbuildError } from '../errors.js';
import { readXattrTree } from '../layer/host-tools.js';
import { INIT_LAYER_ENTRIES, isWhiteout, SnapshotError } from './overlay.js';
import { opaqueXattr, overlayXattrPrefix, ROOTLESS_PREFIX } from './overlay-xattrs.js';

/** A path inside a tree, as bytes in a latin1 string; '' is the tree's root. */
export type RelPath = string;

/** The host path of `rel` under `root` (a UTF-8 path), as a Buffer. */
export function hostPath(root: string, rel: RelPath): Buffer {
  return rel === '' ? Buffer.from(root, 'utf8') : Buffer.concat([Buffer.from(root, 'utf8'), Buffer.from('/' + rel, 'latin1')]);
}

export function joinRel(dir: RelPath, name: string): RelPath {
  return dir === '' ? name : `${dir}/${name}`;
}

export async function readdirRel(root: string, rel: RelPath): Promise<string[]> {
  const names = await readdir(hostPath(root, rel), { encoding: 'buffer' });
  return names.map((n) => n.toString('latin1')).sort();
}

export async function lstatOrNone(p: Buffer): Promise<Stats | undefined>;
export async function lstatOrNone(p: Buffer, big: true): Promise<BigIntStats | undefined>;
export async function lstatOrNone(p: Buffer, big?: true): Promise<Stats | BigIntStats | undefined> {
  try {
    return big ? await lstat(p, { bigint: true }) : await lstat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}


/** The dirs of a layer dir that carry overlay's opaque xattr (one getfattr run). */
export async function opaqueDirs(layerDir: string): Promise<Set<RelPath>> {
  const opaque = opaqueXattr();
  const tree = await readXattrTree(layerDir, `^${opaque.replace(/\./g, '\\.')}$`);
  const out = new Set<RelPath>();
  for (const [rel, attrs] of tree) if (attrs.get(opaque)?.toString('latin1') === 'y') out.add(rel);
  return out;
}

async function clearDir(p: Buffer): Promise<void> {
  for (const name of await readdir(p, { encoding: 'buffer' })) {
    await rm(Buffer.concat([p, Buffer.from('/'), name]), { recursive: true, force: true });
  }
}

/**
 * Apply an overlay2 layer dir (a `diff` dir or an init layer) onto `target`, as if it were the
 * next upper layer: a 0/0 char device deletes the path; an opaque dir first loses everything below
 * it; a dir over a non-dir, or a non-dir over anything, replaces it; dirs merge and take the
 * layer's attributes. overlay's own xattrs (trusted.overlay.*) are not copied. Sockets are skipped.
 *
 * Every layer dir holds the parents of its entries as real dirs, and parents are handled before
 * children, so a symlink in `target` is replaced before anything below its name is touched: no
 * path ever resolves through a symlink of the tree.
 */
export async function applyLayer(layerDir: string, target: string): Promise<{ entries: number }> {
  const opaque = await opaqueDirs(layerDir);
  const list: RelPath[] = [];
  if (opaque.has('')) await clearDir(hostPath(target, ''));
  const walk = async (rel: RelPath): Promise<void> => {
    for (const name of await readdirRel(layerDir, rel)) {
      const r = joinRel(rel, name);
      const st = await lstat(hostPath(layerDir, r));
      const t = hostPath(target, r);
      const existing = await lstatOrNone(t);
      if (isWhiteout(st)) {
        if (existing !== undefined) await rm(t, { recursive: true, force: true });
        continue;
      }
      if (st.isSocket()) continue;
      if (st.isDirectory()) {
        if (existing !== undefined && !existing.isDirectory()) await rm(t, { force: true });
        else if (existing !== undefined && opaque.has(r)) await clearDir(t);
        list.push(r);
        await walk(r);
      } else {
        if (existing !== undefined) await rm(t, { recursive: true, force: true });
        list.push(r);
      }
    }
  };
  await walk('');
  // Hard links of a layer are not kept: overlay breaks them on copy-up (index=off), so writing to
  // one name must not change the others here either.
  await copyEntries(layerDir, target, list, { hardLinks: false });
  return { entries: list.length };
}

/**
 * Copy the listed entries (parents before children; a dir is copied without its contents) from
 * `from` to `to` with one `tar -c | tar -x` pipe: owners, modes, ns times, xattrs (but
 * trusted.overlay.*), devices, fifos, symlinks, hard links among the listed entries (unless
 * `hardLinks` is false: then every name gets its own copy). Existing dirs
 * in `to` take the copied attributes; existing non-dirs must have been removed by the caller.
 */
export async function copyEntries(from: string, to: string, list: readonly RelPath[], opts: { hardLinks: boolean } = { hardLinks: true }): Promise<void> {
  if (list.length === 0) return;
  const names = Buffer.concat(list.flatMap((r) => [Buffer.from('./' + r, 'latin1'), Buffer.from([0])]));
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };
  const create = spawn(
    'tar',
    [
      '--create',
      '--file=-',
      `--directory=${from}`,
      '--no-recursion',
      '--null',
      '--verbatim-files-from',
      '--files-from=-',
      '--format=posix',
      '--numeric-owner',
      '--xattrs',
      '--xattrs-include=*',
      '--xattrs-exclude=trusted.overlay.*',
      ...(overlayXattrPrefix() === ROOTLESS_PREFIX ? [`--xattrs-exclude=${ROOTLESS_PREFIX}*`] : []),
      '--pax-option=delete=atime,delete=ctime',
      ...(opts.hardLinks ? [] : ['--hard-dereference']),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'], env },
  );
  const extract = spawn(
    'tar',
    [
      '--extract',
      '--file=-',
      `--directory=${to}`,
      '--same-permissions',
      '--same-owner',
      '--numeric-owner',
      '--xattrs',
      '--xattrs-include=*',
      '--no-acls',
      '--no-selinux',
      '--warning=no-timestamp',
    ],
    { stdio: ['pipe', 'ignore', 'pipe'], env },
  );
  const errs: Buffer[] = [];
  create.stderr.on('data', (c: Buffer) => errs.push(c));
  extract.stderr.on('data', (c: Buffer) => errs.push(c));
  create.stdout.pipe(extract.stdin);
  extract.stdin.on('error', () => undefined);
  create.stdin.on('error', () => undefined);
  create.stdin.end(names);
  const status = (p: ReturnType<typeof spawn>, what: string) =>
    new Promise<number>((resolve, reject) => {
      p.on('error', (e) => reject(new SnapshotError(`cannot run tar (${what}): ${e.message}`, { cause: e })));
      p.on('close', (code) => resolve(code ?? -1));
    });
  const [c, x] = await Promise.all([status(create, 'create'), status(extract, 'extract')]);
  if (c !== 0 || x !== 0) {
    throw new SnapshotError(`copying ${list.length} entries from ${from} to ${to} failed (tar exit ${c}/${x}): ${Buffer.concat(errs).toString('utf8').trim()}`, {
      code: 'SNAPSHOT_COPY',
    });
  }
}

/**
 * The init layer's mount points in a plain rootfs (what overlay mode gets from the init lowerdir):
 * missing ones are created (dirs 0755, files empty 0755, root-owned; /etc/mtab → /proc/mounts);
 * a parent that is not a directory, or a mount point of the wrong kind, is an error, since a bind
 * or mount onto it could resolve outside the rootfs. The copy snapshotter prepares RUN snapshots
 * with the init layer applied, so for them this only checks.
 */
export async function ensureMountPoints(root: string): Promise<void> {
  for (const entry of INIT_LAYER_ENTRIES) {
    const parts = entry.path.split('/').filter((p) => p !== '');
    let rel = '';
    for (const [i, part] of parts.entries()) {
      rel = joinRel(rel, part);
      const p = hostPath(root, rel);
      const last = i === parts.length - 1;
      const st = await lstatOrNone(p);
      const kind = last ? entry.type : 'dir';
      if (st === undefined) {
        if (kind === 'dir') await mkdir(p, { mode: 0o755 });
        else if (kind === 'file') await (await open(p, 'wx', 0o755)).close();
        else if (entry.type === 'symlink') await symlink(entry.target, p);
        await lchown(p, 0, 0);
        continue;
      }
      if (kind === 'dir' && !st.isDirectory()) throw new TsbuildError('SANDBOX_ROOTFS', `/${rel} in ${root} is not a directory; cannot mount on it`);
      if (kind === 'file' && rel.startsWith('etc/') && !st.isFile()) throw new TsbuildError('SANDBOX_ROOTFS', `/${rel} in ${root} is not a regular file; cannot bind a file on it`);
    }
  }
}
