/**
 * Test harness for a real, private Docker daemon (Debian's docker.io 20.10).
 *
 * Every daemon gets its own data root, exec root, pidfile, config file, trust key
 * and unix socket under one short temp dir (unix socket paths are limited to 108
 * bytes), starts its own containerd (state under its exec root), and never touches
 * a system-wide daemon. `stop()` kills by pid, unmounts what the daemon left, and
 * removes the temp dir. A process 'exit'/signal hook does the same synchronously
 * for daemons a crashed test never stopped.
 *
 * Sandbox facts (see the differential test): `--iptables=false --bridge=none`
 * means the classic builder's RUN containers get only a loopback interface, and
 * BuildKit RUN steps need `docker build --network=host` (otherwise: "network
 * bridge not found").
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

/** Debian's 20.10 client; /usr/local/bin/docker on this machine is an unrelated newer one. */
export const DOCKER_CLI = '/usr/bin/docker';
const DOCKERD_CANDIDATES = ['/usr/sbin/dockerd', '/usr/bin/dockerd'];
const BUSYBOX = '/bin/busybox';

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface DockerRunOptions {
  input?: Buffer | string;
  env?: Record<string, string>;
  cwd?: string;
  /** Kill the client after this long (default 300 s); the result then has code 124. */
  timeoutMs?: number;
}

export interface Dockerd {
  /** Path of the daemon's unix socket (DOCKER_HOST is `unix://` + this). */
  socket: string;
  dataRoot: string;
  execRoot: string;
  /** The daemon's log (stdout+stderr). */
  logFile: string;
  pid: number;
  /** Runs /usr/bin/docker against this daemon. Never throws for a non-zero exit. */
  docker(args: string[], opts?: DockerRunOptions): Promise<DockerResult>;
  /** Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Use this data root (kept on stop: the caller owns it). Default: a fresh temp dir, removed on stop. */
  dataRoot?: string;
  /** Default 'overlay2' (the store layout tsbuild writes and the tests read). */
  storageDriver?: string;
  /** Readiness timeout, default 60 s. */
  startTimeoutMs?: number;
  extraArgs?: string[];
}

function findDockerd(): string | undefined {
  return DOCKERD_CANDIDATES.find((p) => existsSync(p));
}

/** Why docker-backed tests cannot run here, or undefined when they can. */
export function dockerUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return `docker tests need Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'docker tests need root (to run a private dockerd)';
  if (!findDockerd()) return `dockerd not found (${DOCKERD_CANDIDATES.join(', ')}); apt-get install docker.io`;
  if (!existsSync(DOCKER_CLI)) return `${DOCKER_CLI} not found; apt-get install docker.io`;
  return undefined;
}

/** dockerd and /usr/bin/docker exist and we are root. */
export function dockerAvailable(): boolean {
  return dockerUnavailableReason() === undefined;
}

// ---------------------------------------------------------------------------------------------
// Live daemons, for emergency cleanup when the process exits without stop().

interface Live {
  root: string;
  dataRoot: string;
  pid: number;
  containerdPid?: number;
  stopped: boolean;
  /** Sockets of shims we had to kill (see noteShimSocket). */
  shimSockets: Set<string>;
}

const live = new Set<Live>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const l of live) emergencyCleanup(l);
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      for (const l of live) emergencyCleanup(l);
      process.removeListener(sig, handler);
      process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); treat it as gone.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined || pid <= 1) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

/**
 * Processes that belong to this daemon although they are not its children any more:
 * containerd shims (their command line names our containerd socket) and container
 * processes (their root is inside our data root).
 */
function strayPids(l: Live): number[] {
  const out: number[] = [];
  let entries: string[];
  let selfNs: string;
  try {
    selfNs = readlinkSync('/proc/self/ns/mnt');
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid || pid <= 1) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(l.root + '/') || cmd.includes(l.dataRoot + '/')) {
        out.push(pid);
        noteShimSocket(l, cmd);
        continue;
      }
    } catch {
      continue;
    }
    // A container process lives in its own mount namespace (its /proc/<pid>/root reads
    // "/"), whose mounts name our data root (overlay lowerdir/upperdir, bind sources).
    try {
      if (readlinkSync(`/proc/${pid}/ns/mnt`) === selfNs) continue;
      const mi = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
      if (mi.includes(l.root + '/') || mi.includes(l.dataRoot + '/')) out.push(pid);
    } catch {
      /* gone or not ours to read */
    }
  }
  return out;
}

/**
 * containerd 1.6 puts each shim's socket at /run/containerd/s/<sha256(address/namespace/id)>
 * whatever its exec root; a shim we SIGKILL leaves it behind, so remember it for removal.
 */
const SHIM_SOCKET_DIR = '/run/containerd/s';

function noteShimSocket(l: Live, cmdline: string): void {
  const argv = cmdline.split('\0');
  if (!argv[0]?.includes('containerd-shim')) return;
  const arg = (k: string): string | undefined => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const address = arg('-address');
  const ns = arg('-namespace');
  const id = arg('-id');
  if (!address || !ns || !id) return;
  l.shimSockets.add(join(SHIM_SOCKET_DIR, createHash('sha256').update(`${address}/${ns}/${id}`).digest('hex')));
}

function removeShimSockets(l: Live): void {
  for (const p of l.shimSockets) rmSync(p, { force: true });
  l.shimSockets.clear();
}

function decodeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points at or below our dirs, deepest first. */
function ourMounts(l: Live): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const points = new Set<string>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5 || f[4] === undefined) continue;
    const mp = decodeMountPath(f[4]);
    if (under(mp, l.root) || under(mp, l.dataRoot)) points.add(mp);
  }
  return [...points].sort((a, b) => b.length - a.length);
}

function unmountAll(l: Live): void {
  for (let pass = 0; pass < 5; pass++) {
    const mounts = ourMounts(l);
    if (mounts.length === 0) return;
    for (const mp of mounts) {
      try {
        execFileSync('umount', [mp], { stdio: 'ignore' });
      } catch {
        try {
          execFileSync('umount', ['-l', mp], { stdio: 'ignore' });
        } catch {
          /* try again next pass */
        }
      }
    }
  }
}

function removeDirs(l: Live): void {
  // Only when nothing is mounted there any more: never recurse into a live mount.
  // A caller-given data root outside our temp dir is the caller's to keep.
  if (ourMounts(l).length === 0) rmSync(l.root, { recursive: true, force: true });
}

function emergencyCleanup(l: Live): void {
  if (l.stopped) return;
  l.stopped = true;
  signal(l.pid, 'SIGKILL');
  signal(l.containerdPid, 'SIGKILL');
  for (const pid of strayPids(l)) signal(pid, 'SIGKILL');
  for (let i = 0; i < 20 && (alive(l.pid) || (l.containerdPid !== undefined && alive(l.containerdPid))); i++) sleepSync(50);
  try {
    removeShimSockets(l);
    unmountAll(l);
    removeDirs(l);
  } catch {
    /* best effort while exiting */
  }
  live.delete(l);
}

// ---------------------------------------------------------------------------------------------

function runProcess(file: string, args: string[], env: NodeJS.ProcessEnv, opts: DockerRunOptions = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 300_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        code: timedOut ? 124 : (code ?? (sig ? 128 : 1)),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: timedOut ? `${stderr}\n[killed after ${opts.timeoutMs ?? 300_000} ms]` : stderr,
      });
    });
    child.stdin.on('error', () => {
      /* the client may exit before reading all input */
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

async function logTail(file: string, lines = 40): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves true when `p` settles within `ms`, false otherwise; leaves no timer behind. */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Starts a private dockerd and waits until it answers `docker version`. */
export async function startDockerd(opts: StartOptions = {}): Promise<Dockerd> {
  const reason = dockerUnavailableReason();
  if (reason) throw new Error(reason);
  const dockerdBin = findDockerd()!;

  // Short fixed base: unix socket paths (ours and containerd's under the exec root) max 108 bytes.
  const root = mkdtempSync(join(existsSync('/tmp') ? '/tmp' : '/var/tmp', 'tsbd-'));
  const dataRoot = opts.dataRoot ?? join(root, 'data');
  const execRoot = join(root, 'x');
  const socket = join(root, 'd.sock');
  const pidFile = join(root, 'd.pid');
  const logFile = join(root, 'dockerd.log');
  const configFile = join(root, 'daemon.json');
  const clientConfig = join(root, 'cli');
  mkdirSync(dataRoot, { recursive: true });
  mkdirSync(execRoot);
  mkdirSync(clientConfig);
  // Our own daemon.json, so /etc/docker/daemon.json is never read; our own
  // trust key, so /etc/docker/key.json is never created. Empty client config, so a
  // user's ~/.docker (contexts, buildx aliases, credential helpers) plays no part.
  writeFileSync(configFile, JSON.stringify({ 'deprecated-key-path': join(root, 'key.json') }) + '\n');
  writeFileSync(join(clientConfig, 'config.json'), '{}\n');

  const args = [
    '--config-file', configFile,
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', pidFile,
    '-H', `unix://${socket}`,
    '--storage-driver', opts.storageDriver ?? 'overlay2',
    '--iptables=false',
    '--ip-masq=false',
    '--bridge=none',
    ...(opts.extraArgs ?? []),
  ];

  const logFd = openSync(logFile, 'a');
  const child = spawn(dockerdBin, args, { stdio: ['ignore', logFd, logFd], env: { ...process.env, TMPDIR: root } });
  closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) {
    rmSync(root, { recursive: true, force: true });
    throw new Error(`could not spawn ${dockerdBin}`);
  }
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      resolve();
    });
  });
  child.on('error', () => {
    exited = true;
  });

  const l: Live = { root, dataRoot, pid, stopped: false, shimSockets: new Set() };
  live.add(l);
  installHooks();

  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: clientConfig };
  for (const k of ['DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'DOCKER_TLS', 'BUILDX_BUILDER']) delete env[k];

  const docker = (dargs: string[], o: DockerRunOptions = {}): Promise<DockerResult> =>
    runProcess(DOCKER_CLI, dargs, { ...env, ...(o.env ?? {}) }, o);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (l.stopped) return;
      // Learn containerd's pid before dockerd goes (it removes the pidfile on a clean exit).
      l.containerdPid ??= readContainerdPid(execRoot);
      if (!exited) {
        signal(pid, 'SIGTERM');
        if (!(await within(exitedPromise, 20_000))) {
          signal(pid, 'SIGKILL');
          await within(exitedPromise, 10_000);
        }
      }
      const cpid = l.containerdPid;
      if (cpid !== undefined && alive(cpid)) {
        signal(cpid, 'SIGTERM');
        for (let i = 0; i < 50 && alive(cpid); i++) await sleep(100);
        if (alive(cpid)) signal(cpid, 'SIGKILL');
        for (let i = 0; i < 50 && alive(cpid); i++) await sleep(100);
      }
      for (let round = 0; round < 3; round++) {
        const strays = strayPids(l);
        if (strays.length === 0) break;
        for (const p of strays) signal(p, 'SIGKILL');
        await sleep(200);
      }
      l.stopped = true;
      removeShimSockets(l);
      unmountAll(l);
      const left = ourMounts(l);
      live.delete(l);
      if (left.length > 0) throw new Error(`dockerd stopped but these mounts could not be removed: ${left.join(', ')}`);
      removeDirs(l);
    })();
    return stopping;
  };

  // Wait until the API answers.
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      const tail = await logTail(logFile);
      await stop().catch(() => undefined);
      throw new Error(`dockerd exited during startup (${args.join(' ')}); log tail:\n${tail}`);
    }
    if (existsSync(socket)) {
      const r = await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
      if (r.code === 0) break;
    }
    if (Date.now() > deadline) {
      const tail = await logTail(logFile);
      await stop().catch(() => undefined);
      throw new Error(`dockerd did not answer within ${opts.startTimeoutMs ?? 60_000} ms; log tail:\n${tail}`);
    }
    await sleep(100);
  }
  l.containerdPid = readContainerdPid(execRoot);

  return { socket, dataRoot, execRoot, logFile, pid, docker, stop };
}

function readContainerdPid(execRoot: string): number | undefined {
  try {
    const n = Number(readFileSync(join(execRoot, 'containerd', 'containerd.pid'), 'utf8').trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Offline base image

/** Names the differential tests' Dockerfiles use in FROM; all point at one busybox image. */
export const DEFAULT_BASE_TAGS = [
  'busybox:latest',
  'busybox:1.36',
  'alpine:latest',
  'alpine:3.19',
  'alpine:3.20',
  'debian:latest',
  'debian:bookworm',
  'debian:bookworm-slim',
  'debian:12',
  'ubuntu:latest',
  'ubuntu:22.04',
  'ubuntu:24.04',
];

interface TarEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  data?: Buffer;
  linkname?: string;
  uid?: number;
  gid?: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** A minimal ustar writer (names < 100 bytes, which is all the base needs). */
function makeTar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  const mtime = 946684800; // 2000-01-01, fixed
  for (const e of entries) {
    if (Buffer.byteLength(e.name) >= 100) throw new Error(`tar name too long: ${e.name}`);
    const h = Buffer.alloc(512);
    const data = e.type === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    h.write(e.name, 0, 'utf8');
    h.write(octal(e.mode & 0o7777, 8), 100, 'ascii');
    h.write(octal(e.uid ?? 0, 8), 108, 'ascii');
    h.write(octal(e.gid ?? 0, 8), 116, 'ascii');
    h.write(octal(data.length, 12), 124, 'ascii');
    h.write(octal(mtime, 12), 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write(e.type === 'file' ? '0' : e.type === 'symlink' ? '2' : '5', 156, 'ascii');
    if (e.linkname) h.write(e.linkname, 157, 'utf8');
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    h.write('root', 265, 'ascii');
    h.write('root', 297, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(octal(sum, 7) + ' ', 148, 'ascii');
    blocks.push(h, data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** True when the ELF file has a PT_INTERP header (is dynamically linked). */
function elfIsDynamic(bin: Buffer): boolean {
  if (bin.readUInt32BE(0) !== 0x7f454c46 || bin[4] !== 2 || bin[5] !== 1) return false; // only 64-bit LE checked
  const phoff = Number(bin.readBigUInt64LE(0x20));
  const phentsize = bin.readUInt16LE(0x36);
  const phnum = bin.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (bin.readUInt32LE(phoff + i * phentsize) === 3) return true;
  return false;
}

/** The rootfs of the offline base image, as an uncompressed tar. */
export function busyboxRootfsTar(): Buffer {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} not found; apt-get install busybox-static`);
  const bin = readFileSync(BUSYBOX);
  if (elfIsDynamic(bin)) throw new Error(`${BUSYBOX} is dynamically linked; install busybox-static (not busybox)`);
  const applets = execFileSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'bin/busybox');

  const dirs: Array<[string, number]> = [
    ['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['home', 0o755], ['home/app', 0o755],
    ['proc', 0o555], ['root', 0o700], ['run', 0o755], ['sbin', 0o755], ['sys', 0o555],
    ['tmp', 0o1777], ['usr', 0o755], ['usr/bin', 0o755], ['usr/local', 0o755], ['usr/local/bin', 0o755],
    ['usr/sbin', 0o755], ['var', 0o755], ['var/tmp', 0o1777],
  ];
  const entries: TarEntry[] = dirs.map(([name, mode]) => ({ name: name + '/', type: 'dir', mode, ...(name === 'home/app' ? { uid: 1000, gid: 1000 } : {}) }));
  entries.push({ name: 'bin/busybox', type: 'file', mode: 0o755, data: bin });
  const seen = new Set<string>();
  for (const a of applets) {
    if (seen.has(a)) continue;
    seen.add(a);
    entries.push({ name: a, type: 'symlink', mode: 0o777, linkname: '/bin/busybox' });
  }
  const passwd = [
    'root:x:0:0:root:/root:/bin/sh',
    'app:x:1000:1000:app:/home/app:/bin/sh',
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
    '',
  ].join('\n');
  const group = ['root:x:0:', 'app:x:1000:', 'nogroup:x:65534:', 'nobody:x:65534:', ''].join('\n');
  entries.push({ name: 'etc/passwd', type: 'file', mode: 0o644, data: Buffer.from(passwd) });
  entries.push({ name: 'etc/group', type: 'file', mode: 0o644, data: Buffer.from(group) });
  return makeTar(entries);
}

/**
 * Imports a busybox rootfs (empty config: no Env, no Cmd) and tags it under every
 * name in `tags`; returns the image id. Nothing is cached between runs.
 */
export async function importBusyboxBase(d: Dockerd, tags: string[] = DEFAULT_BASE_TAGS): Promise<string> {
  if (tags.length === 0) throw new Error('importBusyboxBase: no tags');
  const tar = busyboxRootfsTar();
  const [first, ...rest] = tags as [string, ...string[]];
  const imp = await d.docker(['import', '-', first], { input: tar });
  if (imp.code !== 0) throw new Error(`docker import failed (${imp.code}): ${imp.stderr}`);
  const id = imp.stdout.trim();
  for (const t of rest) {
    const r = await d.docker(['tag', id, t]);
    if (r.code !== 0) throw new Error(`docker tag ${t} failed (${r.code}): ${r.stderr}`);
  }
  return id;
}
