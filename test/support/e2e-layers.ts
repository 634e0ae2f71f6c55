/**
 * Reads images and their layers out of a Docker 20.10 overlay2 data root — a real
 * dockerd's or tsbuild's (same format, /work/shared/STORE-FORMAT.md) — and compares
 * layer file trees for the end-to-end differential suite (test/e2e/).
 *
 *   image ID → image/overlay2/imagedb/content/sha256/<id> (config) → rootfs.diff_ids
 *   → chainIDs → image/overlay2/layerdb/sha256/<chain>/{cache-id,size,diff}
 *   → overlay2/<cache-id>/diff (the layer as extracted: whiteouts are char 0/0
 *   devices, opaque dirs carry trusted.overlay.opaque=y)
 *
 * Each layer is described as a bytewise-sorted list of entries (the diff dir itself
 * excluded). xattrs are read with getfattr (package `attr`) in one spawn per tree.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket' | 'whiteout';

export interface LayerEntry {
  /** Relative to the layer root, `/`-separated, no leading `./`, no trailing `/`. */
  path: string;
  /** `whiteout` = a char device 0/0 (overlay's deletion marker). */
  type: EntryType;
  /** Permission bits incl. setuid/setgid/sticky (st_mode & 07777). */
  mode: number;
  uid: number;
  gid: number;
  /** st_size of regular files; 0 for everything else (symlinks are described by linkTarget). */
  size: number;
  /** sha256 hex of a regular file's content. */
  sha256?: string;
  /** Symlink target. */
  linkTarget?: string;
  /** For a non-directory with other links in this layer: the first path (in sorted order) of its inode. */
  hardlinkOf?: string;
  /** `major:minor` of char/block devices (whiteouts excluded). */
  rdev?: string;
  /**
   * xattrs as `name → hex value`, except overlayfs bookkeeping (`trusted.overlay.*`
   * other than `trusted.overlay.opaque`), which the kernel may add to any upper dir.
   */
  xattrs: Record<string, string>;
  /** mtime in whole seconds (layer tars carry seconds only). */
  mtime: number;
}

export interface LayerInfo {
  index: number;
  diffId: string;
  chainId: string;
  cacheId: string;
  /** layerdb `size` file. */
  size: number;
  diffDir: string;
}

export interface ImageConfigJson {
  architecture?: string;
  os?: string;
  author?: string;
  created?: string;
  config?: Record<string, unknown> | null;
  container_config?: Record<string, unknown> | null;
  history?: HistoryEntry[];
  rootfs?: { type: string; diff_ids?: string[] };
  [k: string]: unknown;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Store paths

export function imageRoot(dataRoot: string): string {
  return join(dataRoot, 'image', 'overlay2');
}

function hexOf(id: string): string {
  return id.startsWith('sha256:') ? id.slice('sha256:'.length) : id;
}

export function chainIdsOf(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : 'sha256:' + createHash('sha256').update(`${prev} ${d}`).digest('hex'));
  }
  return out;
}

/** Every image ID (`sha256:…`) in the data root's imagedb. */
export async function listImageIds(dataRoot: string): Promise<string[]> {
  const dir = join(imageRoot(dataRoot), 'imagedb', 'content', 'sha256');
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n}`).sort();
}

/** The raw config bytes of an image. */
export async function readImageConfigBytes(dataRoot: string, imageId: string): Promise<Buffer> {
  return readFile(join(imageRoot(dataRoot), 'imagedb', 'content', 'sha256', hexOf(imageId)));
}

export async function readImageConfig(dataRoot: string, imageId: string): Promise<ImageConfigJson> {
  return JSON.parse((await readImageConfigBytes(dataRoot, imageId)).toString('utf8')) as ImageConfigJson;
}

/** `metadata/sha256/<id>/parent`, when the image has one. */
export async function readImageParent(dataRoot: string, imageId: string): Promise<string | undefined> {
  try {
    return (await readFile(join(imageRoot(dataRoot), 'imagedb', 'metadata', 'sha256', hexOf(imageId), 'parent'), 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** The image ID a reference points at, from repositories.json (familiar names, e.g. `e2e-x:docker`). */
export async function imageIdForRef(dataRoot: string, ref: string): Promise<string | undefined> {
  const file = join(imageRoot(dataRoot), 'repositories.json');
  if (!existsSync(file)) return undefined;
  const repos = JSON.parse(await readFile(file, 'utf8')) as { Repositories?: Record<string, Record<string, string>> };
  const full = ref.includes(':') ? ref : `${ref}:latest`;
  for (const tags of Object.values(repos.Repositories ?? {})) {
    const id = tags[full];
    if (id) return id;
  }
  return undefined;
}

/** The image's layers, base first, with their layerdb records and diff dirs. */
export async function readImageLayers(dataRoot: string, imageId: string): Promise<{ config: ImageConfigJson; layers: LayerInfo[] }> {
  const config = await readImageConfig(dataRoot, imageId);
  const diffIds = config.rootfs?.diff_ids ?? [];
  const chains = chainIdsOf(diffIds);
  const layers: LayerInfo[] = [];
  for (let i = 0; i < diffIds.length; i++) {
    const chainId = chains[i]!;
    const dir = join(imageRoot(dataRoot), 'layerdb', 'sha256', hexOf(chainId));
    const cacheId = (await readFile(join(dir, 'cache-id'), 'utf8')).trim();
    const diff = (await readFile(join(dir, 'diff'), 'utf8')).trim();
    if (diff !== diffIds[i]) throw new Error(`layerdb ${chainId}: diff ${diff} ≠ config diff_id ${diffIds[i]}`);
    const size = Number(await readFile(join(dir, 'size'), 'utf8'));
    layers.push({ index: i, diffId: diffIds[i]!, chainId, cacheId, size, diffDir: join(dataRoot, 'overlay2', cacheId, 'diff') });
  }
  return { config, layers };
}

/** The history entries that own a layer (empty_layer not set), in order: one per diff_id. */
export function layerHistory(config: ImageConfigJson): HistoryEntry[] {
  return (config.history ?? []).filter((h) => !h.empty_layer);
}

// ---------------------------------------------------------------------------------------------
// Trees

function cmpBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function run(file: string, args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        reject(err);
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: stderr.toString('utf8') });
    });
  });
}

/** getfattr quotes bytes as `\ooo` (octal); everything else is literal. */
function unquoteGetfattr(s: Buffer): string {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === 0x5c && i + 3 < s.length && /^[0-7]{3}$/.test(s.subarray(i + 1, i + 4).toString('latin1'))) {
      out.push(parseInt(s.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else {
      out.push(c);
    }
  }
  return Buffer.from(out).toString('utf8');
}

/** True for overlayfs's own bookkeeping xattrs, which are no part of a layer's content. */
export function isOverlayInternalXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') && name !== 'trusted.overlay.opaque';
}

/** All xattrs under `dir` (relative path → name → hex value), by one getfattr spawn. */
export async function readXattrs(dir: string): Promise<Map<string, Record<string, string>>> {
  const r = await run('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', dir]);
  if (r.code !== 0) throw new Error(`getfattr -R ${dir} failed (${r.code}): ${r.stderr}`);
  const out = new Map<string, Record<string, string>>();
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  let current: Record<string, string> | undefined;
  let start = 0;
  const text = r.stdout;
  while (start < text.length) {
    let end = text.indexOf(0x0a, start);
    if (end < 0) end = text.length;
    const line = text.subarray(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    const s = line.toString('latin1');
    if (s.startsWith('# file: ')) {
      const path = unquoteGetfattr(line.subarray('# file: '.length));
      const rel = path === dir || path === prefix.slice(0, -1) ? '' : path.startsWith(prefix) ? path.slice(prefix.length) : path;
      current = {};
      out.set(rel, current);
      continue;
    }
    if (!current) continue;
    const eq = s.indexOf('=');
    const name = unquoteGetfattr(line.subarray(0, eq < 0 ? line.length : eq));
    let value = eq < 0 ? '' : s.slice(eq + 1);
    if (value.startsWith('0x')) value = value.slice(2);
    else if (value.startsWith('"') && value.endsWith('"')) value = Buffer.from(value.slice(1, -1), 'latin1').toString('hex');
    if (!isOverlayInternalXattr(name)) current[name] = value.toLowerCase();
  }
  return out;
}

function sha256OfFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** Describes every entry under `dir` (not `dir` itself), sorted bytewise by path. */
export async function describeTree(dir: string): Promise<LayerEntry[]> {
  const xattrs = await readXattrs(dir);
  const entries: LayerEntry[] = [];
  const inodes = new Map<bigint, string>();
  const paths: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel === '' ? dir : join(dir, rel))).sort(cmpBytes);
    for (const name of names) {
      const p = rel === '' ? name : `${rel}/${name}`;
      paths.push(p);
      const st = await lstat(join(dir, p), { bigint: true });
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk('');
  paths.sort(cmpBytes);
  for (const p of paths) {
    const abs = join(dir, p);
    const st = await lstat(abs, { bigint: true });
    const mode = Number(st.mode & 0o7777n);
    let type: EntryType;
    if (st.isFile()) type = 'file';
    else if (st.isDirectory()) type = 'dir';
    else if (st.isSymbolicLink()) type = 'symlink';
    else if (st.isFIFO()) type = 'fifo';
    else if (st.isSocket()) type = 'socket';
    else if (st.isBlockDevice()) type = 'block';
    else type = st.rdev === 0n ? 'whiteout' : 'char';
    const e: LayerEntry = {
      path: p,
      type,
      mode,
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: type === 'file' ? Number(st.size) : 0,
      xattrs: xattrs.get(p) ?? {},
      mtime: Number(st.mtimeNs / 1_000_000_000n),
    };
    if (type === 'file') e.sha256 = await sha256OfFile(abs);
    // Any non-directory can be hardlinked (fifos and symlinks too; whiteouts are
    // excluded: overlay may share one inode among them).
    if (type !== 'dir' && type !== 'whiteout' && st.nlink > 1n) {
      const first = inodes.get(st.ino);
      if (first === undefined) inodes.set(st.ino, p);
      else e.hardlinkOf = first;
    }
    if (type === 'symlink') e.linkTarget = await readlink(abs);
    if (type === 'char' || type === 'block') {
      const rdev = Number(st.rdev);
      e.rdev = `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | ((Math.floor(rdev / 0x100000) & 0xfff) << 8)}`;
    }
    entries.push(e);
  }
  // The first path of a hardlinked inode names the group: mark it too, so a
  // missing link shows as a difference on both sides.
  const firsts = new Set(entries.filter((e) => e.hardlinkOf !== undefined).map((e) => e.hardlinkOf!));
  for (const e of entries) if (firsts.has(e.path)) e.hardlinkOf = e.path;
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Comparison

export type MtimeRule = 'compare' | 'ignore' | ((expected: LayerEntry) => boolean);

export interface CompareOptions {
  /**
   * Which mtimes to compare: 'compare' all, 'ignore' all (RUN layers), or a
   * predicate over the expected (Docker's) entry that says whether to compare it.
   */
  mtime?: MtimeRule;
}

function fmtMode(m: number): string {
  return '0' + m.toString(8).padStart(3, '0');
}

function fmtTime(s: number): string {
  return `${s} (${new Date(s * 1000).toISOString()})`;
}

/** One line describing an entry, e.g. `file 0644 0:0 size=6 sha256=5891b5b5… mtime=…`. */
export function formatEntry(e: LayerEntry): string {
  const parts = [e.type, fmtMode(e.mode), `${e.uid}:${e.gid}`];
  if (e.type === 'file') parts.push(`size=${e.size}`, `sha256=${(e.sha256 ?? '').slice(0, 12)}…`);
  if (e.linkTarget !== undefined) parts.push(`-> ${JSON.stringify(e.linkTarget)}`);
  if (e.hardlinkOf !== undefined) parts.push(`hardlink-group=${JSON.stringify(e.hardlinkOf)}`);
  if (e.rdev !== undefined) parts.push(`rdev=${e.rdev}`);
  const xs = Object.entries(e.xattrs);
  if (xs.length) parts.push(`xattrs={${xs.map(([k, v]) => `${k}=0x${v}`).join(', ')}}`);
  parts.push(`mtime=${e.mtime}`);
  return parts.join(' ');
}

/**
 * Differences between two layer trees, one readable line each (empty = equal).
 * `expected` is Docker's side, `actual` ours.
 */
export function compareTrees(expected: LayerEntry[], actual: LayerEntry[], opts: CompareOptions = {}): string[] {
  const rule = opts.mtime ?? 'compare';
  const exp = new Map(expected.map((e) => [e.path, e]));
  const act = new Map(actual.map((e) => [e.path, e]));
  const all = [...new Set([...exp.keys(), ...act.keys()])].sort(cmpBytes);
  const out: string[] = [];
  for (const p of all) {
    const e = exp.get(p);
    const a = act.get(p);
    if (!a) {
      out.push(`- /${p}: only in docker's layer: ${formatEntry(e!)}`);
      continue;
    }
    if (!e) {
      out.push(`+ /${p}: only in ours: ${formatEntry(a)}`);
      continue;
    }
    const diffs: string[] = [];
    if (e.type !== a.type) diffs.push(`type ${e.type} ≠ ${a.type}`);
    if (e.mode !== a.mode) diffs.push(`mode ${fmtMode(e.mode)} ≠ ${fmtMode(a.mode)}`);
    if (e.uid !== a.uid || e.gid !== a.gid) diffs.push(`owner ${e.uid}:${e.gid} ≠ ${a.uid}:${a.gid}`);
    if (e.size !== a.size) diffs.push(`size ${e.size} ≠ ${a.size}`);
    if (e.sha256 !== a.sha256) diffs.push(`sha256 ${e.sha256 ?? '-'} ≠ ${a.sha256 ?? '-'}`);
    if (e.linkTarget !== a.linkTarget) diffs.push(`link target ${JSON.stringify(e.linkTarget)} ≠ ${JSON.stringify(a.linkTarget)}`);
    if (e.hardlinkOf !== a.hardlinkOf) diffs.push(`hardlink group ${JSON.stringify(e.hardlinkOf)} ≠ ${JSON.stringify(a.hardlinkOf)}`);
    if (e.rdev !== a.rdev) diffs.push(`rdev ${e.rdev} ≠ ${a.rdev}`);
    const xe = JSON.stringify(Object.entries(e.xattrs).sort());
    const xa = JSON.stringify(Object.entries(a.xattrs).sort());
    if (xe !== xa) diffs.push(`xattrs ${xe} ≠ ${xa}`);
    const checkTime = rule === 'compare' ? true : rule === 'ignore' ? false : rule(e);
    if (checkTime && e.mtime !== a.mtime) diffs.push(`mtime ${fmtTime(e.mtime)} ≠ ${fmtTime(a.mtime)}`);
    if (diffs.length) out.push(`~ /${p}: ${diffs.join('; ')}`);
  }
  return out;
}

/** A whole tree, one line per entry (for failure messages and debugging). */
export function formatTree(entries: LayerEntry[]): string {
  return entries.map((e) => `/${e.path}: ${formatEntry(e)}`).join('\n');
}
