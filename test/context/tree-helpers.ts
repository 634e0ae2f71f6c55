/** Build and list small directory trees with exact metadata, for the context and copy tests. */
import { chmodSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fixed mtime (2020-09-13T12:26:40Z) for everything the tests create. */
export const T0 = 1600000000;

export type Spec =
  | { path: string; type?: 'file'; content?: string | Buffer; mode?: number; mtime?: number; uid?: number; gid?: number }
  | { path: string; type: 'dir'; mode?: number; mtime?: number; uid?: number; gid?: number }
  | { path: string; type: 'symlink'; target: string; mtime?: number; uid?: number; gid?: number }
  | { path: string; type: 'hardlink'; target: string };

/** Create the entries in order (parents as needed), then set modes, owners and times (dirs last). */
export function mkTree(root: string, specs: Spec[]): void {
  mkdirSync(root, { recursive: true });
  const dirs: Array<{ path: string; mtime: number }> = [];
  for (const s of specs) {
    const p = join(root, s.path);
    mkdirSync(join(p, '..'), { recursive: true });
    if (s.type === 'dir') {
      mkdirSync(p, { recursive: true });
      chmodSync(p, s.mode ?? 0o755);
      lchownSync(p, s.uid ?? 0, s.gid ?? 0);
      dirs.push({ path: p, mtime: s.mtime ?? T0 });
    } else if (s.type === 'symlink') {
      symlinkSync(s.target, p);
      lchownSync(p, s.uid ?? 0, s.gid ?? 0);
      lutimesSync(p, s.mtime ?? T0, s.mtime ?? T0);
    } else if (s.type === 'hardlink') {
      linkSync(join(root, s.target), p);
    } else {
      writeFileSync(p, s.content ?? '');
      lchownSync(p, s.uid ?? 0, s.gid ?? 0);
      chmodSync(p, s.mode ?? 0o644);
      utimesSync(p, s.mtime ?? T0, s.mtime ?? T0);
    }
  }
  // Parents created implicitly get T0 too, then the explicit dirs, deepest first.
  const all: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (lstatSync(p).isDirectory()) {
        walk(p);
        all.push(p);
      }
    }
  };
  walk(root);
  for (const d of all) if (!dirs.some((x) => x.path === d)) utimesSync(d, T0, T0);
  for (const d of dirs.reverse()) utimesSync(d.path, d.mtime, d.mtime);
}

export interface Listed {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: string;
  uid: number;
  gid: number;
  mtime: number;
  /** File contents (utf8), symlink target; '' for dirs. */
  data: string;
  nlink?: number;
}

/** Every entry under `root` (root excluded unless `withRoot`), sorted, with exact metadata. */
export function listTree(root: string, opts: { withRoot?: boolean; nlink?: boolean } = {}): Listed[] {
  const out: Listed[] = [];
  const one = (p: string, rel: string): void => {
    const st = lstatSync(p);
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    const l: Listed = {
      path: rel,
      type,
      mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
      uid: st.uid,
      gid: st.gid,
      mtime: Math.floor(st.mtimeMs / 1000),
      data: type === 'file' ? readFileSync(p, 'utf8') : type === 'symlink' ? readlinkSync(p) : '',
    };
    if (opts.nlink === true && type === 'file') l.nlink = st.nlink;
    out.push(l);
  };
  const walk = (d: string, rel: string): void => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const r = rel === '' ? n : `${rel}/${n}`;
      one(p, r);
      if (lstatSync(p).isDirectory()) walk(p, r);
    }
  };
  if (opts.withRoot === true) one(root, '.');
  walk(root, '');
  return out;
}

/** A temp dir removed by the returned cleanup. */
export function tempDir(prefix = 'tsb-ctx-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Shorthand for an expected listing entry. */
export function f(path: string, mode: number, data: string, o: { uid?: number; gid?: number; mtime?: number; nlink?: number } = {}): Listed {
  const l: Listed = { path, type: 'file', mode: mode.toString(8).padStart(4, '0'), uid: o.uid ?? 0, gid: o.gid ?? 0, mtime: o.mtime ?? T0, data };
  if (o.nlink !== undefined) l.nlink = o.nlink;
  return l;
}
export function d(path: string, mode: number, o: { uid?: number; gid?: number; mtime?: number } = {}): Listed {
  return { path, type: 'dir', mode: mode.toString(8).padStart(4, '0'), uid: o.uid ?? 0, gid: o.gid ?? 0, mtime: o.mtime ?? T0, data: '' };
}
export function l(path: string, target: string, o: { uid?: number; gid?: number; mtime?: number } = {}): Listed {
  return { path, type: 'symlink', mode: '0777', uid: o.uid ?? 0, gid: o.gid ?? 0, mtime: o.mtime ?? T0, data: target };
}
