/**
 * Test helpers: deterministic upper-dir trees (fixed modes, owners, mtimes, xattrs) for the layer
 * writer/reader tests and their golden tars under test/fixtures/layer/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { chmod, lchown, link, lutimes, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NameLookup } from '../../src/layer/users.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/layer/', import.meta.url));

/** uname/gname as the golden tars were written (matches a stock Debian host for uid/gid 0). */
export const TEST_NAMES: NameLookup = {
  user: (uid) => (uid === 0 ? 'root' : undefined),
  group: (gid) => (gid === 0 ? 'root' : undefined),
};

export type Node =
  | { kind: 'file'; path: string; content?: string | Buffer; mode?: number }
  | { kind: 'dir'; path: string; mode?: number; opaque?: boolean }
  | { kind: 'symlink'; path: string; target: string | Buffer }
  | { kind: 'hardlink'; path: string; target: string }
  | { kind: 'fifo'; path: string; mode?: number }
  | { kind: 'whiteout'; path: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

export interface NodeMeta {
  uid?: number;
  gid?: number;
  /** Seconds (may be fractional: the writer floors). Default T0. */
  mtime?: number;
  /** Raw xattrs to set with setfattr (name → hex value without 0x). */
  xattrs?: Record<string, string>;
}

export type TreeNode = Node & NodeMeta;

/** 2023-11-14T22:13:20Z, with a fraction the writer must floor away. */
export const T0 = 1700000000.75;

/** Path bytes: strings are UTF-8; use Buffer for non-UTF-8 names. */
function p(root: string, rel: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from(root), Buffer.from('/'), Buffer.isBuffer(rel) ? rel : Buffer.from(rel)]);
}

/**
 * Build `nodes` under `root` (created). Nodes are created in order; owners, modes and xattrs are
 * applied, then mtimes deepest-first so that directory times stick.
 */
export async function buildTree(root: string, nodes: readonly TreeNode[]): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const n of nodes) {
    const path = p(root, n.path);
    // Create, then chown, then chmod (chown clears setuid/setgid), then xattrs (chown clears caps).
    switch (n.kind) {
      case 'dir':
        await mkdir(path);
        break;
      case 'file':
        await writeFile(path, n.content ?? '');
        break;
      case 'symlink':
        await symlink(n.target, path);
        break;
      case 'hardlink':
        await link(p(root, n.target), path);
        break;
      case 'fifo':
        execFileSync('mkfifo', [path.toString()]);
        break;
      case 'whiteout':
        execFileSync('mknod', [path.toString(), 'c', '0', '0']);
        break;
      case 'chardev':
        execFileSync('mknod', [path.toString(), 'c', String(n.major), String(n.minor)]);
        break;
    }
    if (n.kind === 'hardlink' || n.kind === 'symlink') {
      if (n.kind === 'symlink') await lchown(path, n.uid ?? 0, n.gid ?? 0);
    } else {
      await lchown(path, n.uid ?? 0, n.gid ?? 0);
      const mode = n.kind === 'whiteout' ? 0 : (n.mode ?? (n.kind === 'dir' ? 0o755 : 0o644));
      await chmod(path, mode);
    }
    if (n.kind === 'dir' && n.opaque === true) execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.toString()]);
    for (const [k, v] of Object.entries(n.xattrs ?? {})) execFileSync('setfattr', ['-h', '-n', k, '-v', `0x${v}`, path.toString()]);
  }
  const byDepth = [...nodes].sort((a, b) => depth(b.path) - depth(a.path));
  for (const n of byDepth) {
    const t = n.mtime ?? T0;
    if (n.kind === 'symlink') await lutimes(p(root, n.path), t, t);
    else if (n.kind !== 'hardlink') await utimes(p(root, n.path), t, t);
  }
}

function depth(rel: string | Buffer): number {
  const s = Buffer.isBuffer(rel) ? rel.toString('latin1') : rel;
  return s.split('/').length;
}

export async function tempDir(prefix = 'tsbuild-layer-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasAttr = hasCommand('getfattr') && hasCommand('setfattr');

/** Can the temp dir's filesystem hold whiteout devices and trusted.overlay.* xattrs (not overlayfs)? */
function tmpSupportsOverlayMarks(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-probe-'));
  try {
    execFileSync('mknod', [join(dir, 'wh'), 'c', '0', '0'], { stdio: 'ignore' });
    execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', dir], { stdio: 'ignore' });
    const out = execFileSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', dir], { encoding: 'utf8' });
    return lstatSync(join(dir, 'wh')).isCharacterDevice() && out === 'y';
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Why tests that chown/mknod (but need no xattr tools) cannot run here, or false. */
export const SKIP_ROOT: string | false = isRoot ? false : 'needs root (mknod, chown)';

/** Why the filesystem tests cannot run here, or false when they can. */
export const SKIP_FS: string | false = !isRoot
  ? 'needs root (mknod, chown, trusted.* xattrs)'
  : !hasAttr
    ? 'needs getfattr/setfattr (Debian package "attr")'
    : !tmpSupportsOverlayMarks()
      ? `${tmpdir()} cannot hold 0/0 char devices or trusted.overlay.* xattrs (overlayfs?)`
      : false;

/** Why the tar-split CLI checks cannot run, or false. */
export const SKIP_TAR_SPLIT: string | false = SKIP_FS !== false ? SKIP_FS : hasCommand('tar-split') ? false : 'tar-split CLI not installed (Debian package "tar-split")';

const L50 = 'a'.repeat(50);

/** The golden cases: name → tree. Every tree is tiny; the tars are a few KB. */
export const CASES: Record<string, TreeNode[]> = {
  // 1024 zero bytes.
  empty: [],
  // Plain files and types: dir, nested dirs, empty file, symlink, hardlink, fifo, setuid, setgid
  // dir, sticky dir, a non-root owner without names, a file in a subdir.
  basic: [
    { kind: 'dir', path: 'bin', mode: 0o755 },
    { kind: 'file', path: 'bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o4755 },
    { kind: 'file', path: 'empty', content: '' },
    { kind: 'dir', path: 'etc', mode: 0o2755 },
    { kind: 'dir', path: 'etc/deep', mode: 0o700 },
    { kind: 'dir', path: 'etc/deep/er', mode: 0o755, mtime: 1600000000 },
    { kind: 'file', path: 'etc/deep/er/conf', content: 'k=v\n', mode: 0o600, uid: 4242, gid: 4343 },
    { kind: 'fifo', path: 'fifo', mode: 0o640 },
    { kind: 'file', path: 'hello.txt', content: 'hello\n' },
    { kind: 'hardlink', path: 'hello2.txt', target: 'hello.txt' },
    { kind: 'symlink', path: 'link', target: 'hello.txt' },
    { kind: 'dir', path: 'tmp', mode: 0o1777 },
  ],
  // Names: exactly 100 chars (fits), > 100 split into prefix + name, non-ASCII (PAX), > 255 (PAX),
  // a long symlink target (PAX linkpath), HTML-escaped JSON characters.
  names: [
    { kind: 'file', path: 'c'.repeat(100), content: 'x' },
    { kind: 'dir', path: L50 },
    { kind: 'dir', path: `${L50}/${L50}` },
    { kind: 'dir', path: `${L50}/${L50}/${L50}` },
    { kind: 'file', path: `${L50}/${L50}/${L50}/split-into-prefix`, content: 'p' },
    // 153 + 1 + 110 = 264 bytes, base name > 100: no USTAR split possible.
    { kind: 'file', path: `${L50}/${L50}/${L50}/${'p'.repeat(110)}`, content: 'q' },
    { kind: 'file', path: 'héllo wörld.txt', content: 'unicode\n' },
    { kind: 'symlink', path: 'longlink', target: `/${'t'.repeat(120)}` },
    { kind: 'file', path: 'x<&>"\\.txt', content: '' },
  ],
  // Overlay upper-dir specials: whiteouts (char 0/0), an opaque dir, a capability (v3 → v2), and
  // a real char device.
  overlay: [
    { kind: 'whiteout', path: 'deleted', uid: 0, gid: 0 },
    { kind: 'chardev', path: 'null', major: 1, minor: 3, mode: 0o666 },
    { kind: 'dir', path: 'opaque', mode: 0o750, opaque: true },
    { kind: 'file', path: 'opaque/kept', content: 'kept\n' },
    { kind: 'whiteout', path: 'opaque/zgone' },
    {
      kind: 'file',
      path: 'ping',
      content: 'ELF?\n',
      mode: 0o755,
      // VFS_CAP_REVISION_3 with cap_net_raw and a rootid: the tar gets a 20-byte revision 2 value.
      xattrs: { 'security.capability': '0100000300200000000000000000000000000000e8030000' },
    },
  ],
};
