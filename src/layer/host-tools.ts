/**
 * The few host tools the layer code spawns where Node has no API: getfattr / setfattr (package
 * `attr`) for extended attributes, and mknod / mkfifo (coreutils) for device nodes, whiteouts and
 * fifos. Each helper batches: one process per call, whatever the number of paths.
 */
import { spawn } from 'node:child_process';
import { type ByteString, bstrToBytes, bytesToBStr } from './bytes.js';
import { LayerError } from './errors.js';

interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function run(cmd: string, args: string[], input?: Buffer): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') {
        const pkg = cmd === 'getfattr' || cmd === 'setfattr' ? 'attr' : 'coreutils';
        reject(new LayerError(`${cmd} not found: install the Debian package "${pkg}"`, { code: 'LAYER_TOOL', cause: e }));
      } else {
        reject(new LayerError(`cannot run ${cmd}: ${e.message}`, { code: 'LAYER_TOOL', cause: e }));
      }
    });
    child.stdin.on('error', () => {
      /* EPIPE if the tool exits early; its exit status tells */
    });
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

/** Undo attr's quote(): `\ooo` octal escapes (getfattr writes them for control chars and `\`). */
export function unquoteAttr(s: ByteString): ByteString {
  if (!s.includes('\\')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\' && i + 3 < s.length && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 4), 8) & 0xff);
      i += 3;
    } else {
      out += c;
    }
  }
  return out;
}

/** attr-style quoting for setfattr --restore: everything outside printable ASCII, space and `\` as `\ooo`. */
export function quoteAttr(s: ByteString): ByteString {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c <= 0x20 || c >= 0x7f || c === 0x5c || c === 0x3d ? `\\${c.toString(8).padStart(3, '0')}` : s[i];
  }
  return out;
}

function parseAttrValue(v: ByteString): Buffer {
  if (v.startsWith('0x')) {
    const hex = v.slice(2);
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new LayerError(`getfattr: bad hex value ${JSON.stringify(v)}`, { code: 'LAYER_TOOL' });
    return Buffer.from(hex, 'hex');
  }
  if (v.startsWith('0s')) return Buffer.from(v.slice(2), 'base64');
  if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) return bstrToBytes(unquoteAttr(v.slice(1, -1)));
  return bstrToBytes(v);
}

/**
 * Extended attributes of every path under `root` (included) whose names match the extended regular
 * expression `pattern`, with ONE `getfattr -R -h` run (symlinks are not followed). Keys are paths
 * relative to `root` as byte strings ('' for the root itself); values map attribute name → value.
 */
export async function readXattrTree(root: string, pattern: string): Promise<Map<ByteString, Map<ByteString, Buffer>>> {
  const res = await run('getfattr', ['-R', '-h', '-d', '-m', pattern, '-e', 'hex', '--absolute-names', '--', root]);
  if (res.code !== 0) {
    throw new LayerError(`getfattr failed (exit ${res.code}): ${res.stderr.trim()}`, { code: 'LAYER' });
  }
  const prefix = bytesToBStr(Buffer.from(root, 'utf8'));
  const out = new Map<ByteString, Map<ByteString, Buffer>>();
  let current: Map<ByteString, Buffer> | undefined;
  for (const line of bytesToBStr(res.stdout).split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# file: ')) {
      const p = unquoteAttr(line.slice('# file: '.length));
      let rel: ByteString;
      if (p === prefix) rel = '';
      else if (p.startsWith(`${prefix}/`)) rel = p.slice(prefix.length + 1);
      else throw new LayerError(`getfattr: unexpected path ${JSON.stringify(p)}`, { code: 'LAYER' });
      current = new Map();
      out.set(rel, current);
      continue;
    }
    if (line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (current === undefined || eq < 0) throw new LayerError(`getfattr: cannot parse ${JSON.stringify(line)}`, { code: 'LAYER' });
    current.set(unquoteAttr(line.slice(0, eq)), parseAttrValue(line.slice(eq + 1)));
  }
  return out;
}

export interface XattrSet {
  /** Absolute path (bytes). */
  path: Buffer;
  name: ByteString;
  value: Buffer;
}

/**
 * Set extended attributes on many paths with ONE `setfattr -h --restore=-` (never follows symlinks).
 * With `ignoreUnsupported`, failures that are all ENOTSUP/EPERM are ignored, as moby's
 * createTarFile ignores them for archive xattrs.
 */
export async function writeXattrs(sets: readonly XattrSet[], opts: { ignoreUnsupported?: boolean } = {}): Promise<void> {
  if (sets.length === 0) return;
  const parts: Buffer[] = [];
  for (const s of sets) {
    const value = s.value.length === 0 ? '""' : `0x${s.value.toString('hex')}`;
    parts.push(Buffer.from(`# file: ${quoteAttr(bytesToBStr(s.path))}\n${quoteAttr(s.name)}=${value}\n\n`, 'latin1'));
  }
  const res = await run('setfattr', ['-h', '--restore=-'], Buffer.concat(parts));
  if (res.code === 0) return;
  const lines = res.stderr.split('\n').filter((l) => l.trim() !== '');
  const benign = (l: string): boolean => /: (Operation not supported|Operation not permitted)$/.test(l);
  if (opts.ignoreUnsupported === true && lines.length > 0 && lines.every(benign)) return;
  throw new LayerError(`setfattr failed (exit ${res.code}): ${res.stderr.trim()}`, { code: 'LAYER' });
}

export interface NodeSpec {
  /** Absolute path (bytes). */
  path: Buffer;
  kind: 'c' | 'b' | 'p';
  major: number;
  minor: number;
}

function shQuote(b: Buffer): Buffer {
  return Buffer.from(`'${bytesToBStr(b).replace(/'/g, "'\\''")}'`, 'latin1');
}

/**
 * Create device nodes and fifos, all with permission bits 0 (callers chmod/chown afterwards), with
 * ONE `sh` running mknod/mkfifo for each. Fails if any path exists.
 */
export async function makeNodes(nodes: readonly NodeSpec[]): Promise<void> {
  if (nodes.length === 0) return;
  const parts: Buffer[] = [Buffer.from('set -e\n')];
  for (const n of nodes) {
    if (!Number.isInteger(n.major) || !Number.isInteger(n.minor) || n.major < 0 || n.minor < 0) {
      throw new LayerError(`bad device numbers ${n.major},${n.minor}`, { entry: n.path.toString('utf8'), code: 'LAYER_CORRUPT' });
    }
    if (n.kind === 'p') parts.push(Buffer.from('mkfifo -m 0 -- '), shQuote(n.path), Buffer.from('\n'));
    else parts.push(Buffer.from('mknod -m 0 -- '), shQuote(n.path), Buffer.from(` ${n.kind} ${n.major} ${n.minor}\n`));
  }
  const res = await run('sh', ['-s'], Buffer.concat(parts));
  if (res.code !== 0) throw new LayerError(`creating device nodes failed: ${res.stderr.trim()}`, { code: 'LAYER' });
}
