/**
 * Paths inside a target rootfs: symlinks resolved without leaving it (moby/sys/symlink
 * FollowSymlinkInScope), and MkdirAll that creates only what is missing.
 */
import { chmod, lchown, lstat, mkdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CopyError } from '../context/sources.js';
import { followInScope } from '../context/scope.js';
import { goClean } from '../layer/bytes.js';

export interface RootfsPath {
  /** Clean absolute path inside the rootfs. */
  path: string;
  /** The same path on the host. */
  hostPath: string;
}

export function hostPathOf(rootfs: string, path: string): string {
  const p = goClean(`/${path}`);
  return p === '/' ? rootfs : join(rootfs, p);
}

/**
 * `path` (absolute inside the rootfs) with every symlink followed; absolute link targets and `..`
 * stay inside the rootfs. Missing components are fine. A component that is not a directory throws
 * `lstat <path>: not a directory` as Docker reports it.
 */
export async function resolveInRootfs(rootfs: string, path: string): Promise<RootfsPath> {
  const resolved = await followInScope(path, {
    lstat: async (candidate) => {
      let st;
      try {
        st = await lstat(join(rootfs, candidate));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR') throw new CopyError('COPY', `lstat ${candidate}: not a directory`);
        if (code === 'ENOENT') return { kind: 'missing' };
        throw e;
      }
      if (st.isSymbolicLink()) return { kind: 'symlink', target: await readlink(join(rootfs, candidate)) };
      return { kind: st.isDirectory() ? 'dir' : 'other' };
    },
    tooManyLinks: () => new CopyError('COPY', `evalSymlinksInScope: too many links in ${path}`),
  });
  const p = resolved === '' ? '/' : goClean(resolved);
  return { path: p, hostPath: hostPathOf(rootfs, p) };
}

export type LstatKind = 'dir' | 'other' | 'missing';

export async function kindOf(hostPath: string, follow = false): Promise<LstatKind> {
  try {
    const st = follow ? await stat(hostPath) : await lstat(hostPath);
    return st.isDirectory() ? 'dir' : 'other';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    throw e;
  }
}

/**
 * idtools.MkdirAllAndChownNew on an already resolved path: create the missing directories of
 * `path` (itself included) with `mode`, owned by `owner`; existing ones are left alone. Returns
 * the paths it created, top first. A component that is a non-directory fails like Go's MkdirAll:
 * `mkdir <that component>: not a directory`.
 */
export async function mkdirAllNew(rootfs: string, path: string, mode: number, owner: { uid: number; gid: number }): Promise<string[]> {
  const created: string[] = [];
  const parts = goClean(`/${path}`).split('/').filter((p) => p !== '');
  let cur = '';
  for (const part of parts) {
    cur = `${cur}/${part}`;
    const host = join(rootfs, cur);
    let st;
    try {
      st = await lstat(host);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st !== undefined) {
      if (st.isDirectory()) continue;
      if (st.isSymbolicLink()) {
        // Only reachable through a path that was not resolved first; follow it like os.MkdirAll
        // would, but never outside the rootfs.
        const r = await resolveInRootfs(rootfs, cur);
        if ((await kindOf(r.hostPath, true)) === 'dir') {
          cur = r.path === '/' ? '' : r.path;
          continue;
        }
      }
      throw new CopyError('COPY', `mkdir ${cur}: not a directory`);
    }
    await mkdir(host);
    await chmod(host, mode);
    await lchown(host, owner.uid, owner.gid);
    created.push(cur);
  }
  return created;
}
