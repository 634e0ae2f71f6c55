/**
 * NamespaceSandbox: runs a RUN step the way dockerd's classic builder runs its build container,
 * with host tools only (util-linux unshare/mount/setpriv, coreutils, /bin/sh):
 *
 *   node ─spawn─▶ unshare --mount --pid --fork --uts --ipc --propagation private [--net]
 *                   └▶ /bin/sh -c SETUP_SCRIPT     (PID 1 of the new PID namespace)
 *                        mounts overlay(init:lowers, upper) on a temp dir — inside the private
 *                        mount namespace, so the host mount table never sees it, even on a crash —
 *                        then /proc, /sys (ro), a tmpfs /dev (null, zero, full, random, urandom,
 *                        tty nodes as runc makes them, fd/stdin/… links), /dev/pts, /dev/shm, /dev/mqueue,
 *                        /etc/hosts, /etc/hostname, /etc/resolv.conf, Docker's read-only and
 *                        masked /proc and /sys paths; sets the hostname; creates the cwd
 *                     └exec▶ setpriv --regid --groups --bounding-set (Docker's default caps)
 *                     └exec▶ env -i K=V…
 *                     └exec▶ unshare --root=<merged> --wd=<cwd> [--setuid=<uid>]
 *                     └exec▶ the command (PID 1, exactly the given env)
 *
 * Supplementary groups: unshare --setgid drops them (setgroups(0)), so gid and groups are set by
 * setpriv before the chroot (still uid 0), and unshare only does --setuid.
 *
 * The environment is set by `env -i` right before the last host binary, unshare. Known limit: that
 * one host process runs with the image's env, so loader variables reach it — with an image
 * `ENV LD_PRELOAD=/usr/lib/…/libjemalloc.so.2` missing on the host, the host's ld.so prints
 * "ERROR: ld.so: object … cannot be preloaded … ignored." on the RUN's stderr (the command itself
 * gets the env exactly). Only a static helper or an interpreter doing chroot+setuid+execve itself
 * (e.g. perl, Essential on Debian) would avoid it.
 *
 * Exit status: the outer `unshare --fork` passes the command's status on; util-linux 2.38 cannot
 * re-raise a SIGKILL of its child and exits 1 with "sigprocmask unblock failed" on the control
 * channel (fd 2, kept apart from the command's stderr) — that is reported as 137/SIGKILL.
 *
 * Rootfs: an overlay of (init layer, lowers; upper, work), or with `rootfs.plainDir` (the copy
 * snapshotter) a bind mount of that directory, which already holds the init layer's mount points.
 *
 * Network: 'none' = a new network namespace with only lo, up (needs iproute2's `ip`); 'default'
 * and 'host' both share the host's network namespace (there is no bridge here).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, statfsSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, rmdir, symlink, unlink, writeFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { TsbuildError } from '../errors.js';
import { ensureMountPoints } from '../snapshot/copy-apply.js';
import { overlayMountData } from '../snapshot/overlay.js';
import { inUserNamespace } from '../sys/userns.js';
import { overlayXattrOption } from '../snapshot/overlay-xattrs.js';
import { hostnameFile, hostsFile } from './env.js';
import { SETUP_SCRIPT } from './setup-script.js';
import type { ExtraMount, RunResult, RunSpec, Sandbox } from './types.js';

export class SandboxError extends TsbuildError {
  /** What the setup (or the outer unshare) said on the control channel, if anything. */
  readonly detail: string | undefined;
  constructor(message: string, options?: { cause?: unknown; code?: string; detail?: string }) {
    super(options?.code ?? 'SANDBOX', message, options);
    this.detail = options?.detail;
  }
}

/** Rejection of an aborted run (name 'AbortError', like Node's own). */
export class SandboxAbortError extends TsbuildError {
  constructor(options?: { cause?: unknown }) {
    super('ABORTED', 'the RUN was aborted', options);
    this.name = 'AbortError';
  }
}

export interface HostTools {
  unshare: string;
  mount: string;
  setpriv: string;
  env: string;
  cp: string;
  mkdir: string;
  readlink: string;
  sh: string;
  /** iproute2, only needed for network 'none'. */
  ip?: string;
  /** Sets the hostname inside a user namespace, where /proc/sys/kernel/hostname is not writable. */
  hostname?: string;
}

export interface NamespaceSandboxOptions {
  /** Where per-run temp dirs go (merged mount point, generated /etc files); default os.tmpdir(). */
  tmpDir?: string;
  /** Override host tool paths. */
  tools?: Partial<HostTools>;
  /** Source of the generated resolv.conf (default /etc/resolv.conf) and, for network 'host', hosts (/etc/hosts). */
  hostResolvConf?: string;
  hostHosts?: string;
}

const DEFAULT_TOOLS: HostTools = {
  unshare: '/usr/bin/unshare',
  mount: '/usr/bin/mount',
  setpriv: '/usr/bin/setpriv',
  env: '/usr/bin/env',
  cp: '/usr/bin/cp',
  mkdir: '/usr/bin/mkdir',
  readlink: '/usr/bin/readlink',
  sh: '/bin/sh',
};

const TOOL_PACKAGES: Record<keyof HostTools, string> = {
  unshare: 'util-linux',
  mount: 'mount',
  setpriv: 'util-linux (setpriv)',
  env: 'coreutils',
  cp: 'coreutils',
  mkdir: 'coreutils',
  readlink: 'coreutils',
  sh: 'dash',
  ip: 'iproute2',
  hostname: 'hostname',
};

/** moby oci/caps/defaults.go (same list in v20.10.24 and today), in setpriv's spelling. */
export const DOCKER_DEFAULT_CAPS = [
  'chown',
  'dac_override',
  'fsetid',
  'fowner',
  'mknod',
  'net_raw',
  'setgid',
  'setuid',
  'setfcap',
  'setpcap',
  'net_bind_service',
  'sys_chroot',
  'kill',
  'audit_write',
] as const;

/** moby oci/defaults.go ReadonlyPaths (v20.10.24). */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
/**
 * moby oci/defaults.go MaskedPaths as in v20.10.24, the dockerd whose store and behaviour tsbuild
 * follows (newer moby adds /proc/interrupts, /sys/devices/virtual/powercap and the per-cpu
 * thermal_throttle dirs).
 */
export const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
];

const CGROUP2_SUPER_MAGIC = 0x63677270;
const STDERR_KEEP = 64 * 1024;
const STDERR_LINES = 20;

interface HostFacts {
  masked: { path: string; dir: boolean }[];
  readonly: string[];
  cgroup2: boolean;
  kcore: boolean;
}

function hostFacts(): HostFacts {
  const masked: { path: string; dir: boolean }[] = [];
  for (const p of MASKED_PATHS) {
    try {
      masked.push({ path: p, dir: statSync(p).isDirectory() });
    } catch {
      /* absent on this kernel: nothing to mask */
    }
  }
  let cgroup2 = false;
  try {
    cgroup2 = statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC;
  } catch {
    cgroup2 = false;
  }
  return { masked, readonly: READONLY_PATHS.filter((p) => existsSync(p)), cgroup2, kcore: existsSync('/proc/kcore') };
}

/** fstab field escaping (libmount unmangles \ooo). */
function fstabEscape(s: string): string {
  return s.replace(/[\\ \t\n#]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0'));
}

function signalNumber(name: string): number {
  return (osConstants.signals as Record<string, number>)[name] ?? 0;
}

export function checkSpec(spec: RunSpec): void {
  const bad = (msg: string): never => {
    throw new SandboxError(msg, { code: 'SANDBOX_SPEC' });
  };
  const noNul = (s: string, what: string) => {
    if (s.includes('\0')) bad(`${what} contains a NUL byte`);
  };
  if (spec.args.length === 0) bad('RUN needs a command (args is empty)');
  spec.args.forEach((a) => noNul(a, 'an argument'));
  for (const e of spec.env) {
    noNul(e, 'an env entry');
    if (e.indexOf('=') <= 0) bad(`invalid environment variable ${JSON.stringify(e)}: it must be NAME=VALUE`);
  }
  const plain = spec.rootfs.plainDir;
  if (plain !== undefined && (!posix.isAbsolute(plain) || plain.includes('\0'))) bad(`the rootfs dir must be an absolute path: ${plain}`);
  if (!posix.isAbsolute(spec.cwd)) bad(`the working directory must be absolute: ${spec.cwd}`);
  noNul(spec.cwd, 'the working directory');
  const hn = Buffer.byteLength(spec.hostname);
  if (hn === 0 || hn > 64 || /[\s\0]/.test(spec.hostname)) bad(`invalid hostname ${JSON.stringify(spec.hostname)} (1 to 64 bytes, no spaces)`);
  const id = (n: number, what: string) => {
    if (!Number.isInteger(n) || n < 0 || n > 0xfffffffe) bad(`invalid ${what} ${n}`);
  };
  id(spec.user.uid, 'uid');
  id(spec.user.gid, 'gid');
  spec.user.additionalGids.forEach((g) => id(g, 'gid'));
  if (!['default', 'host', 'none'].includes(spec.network)) bad(`unknown network mode ${String(spec.network)}`);
  for (const m of spec.extraMounts ?? []) {
    if (!posix.isAbsolute(m.target)) bad(`mount target must be absolute: ${m.target}`);
    noNul(m.target, 'a mount target');
    if (m.type === 'bind') {
      if (m.source === undefined || !posix.isAbsolute(m.source)) bad(`bind mount of ${m.target} needs an absolute source`);
    } else if (m.type === 'overlay') {
      for (const d of [...(m.lowerDirs ?? []), ...(m.upperDir !== undefined ? [m.upperDir, m.workDir ?? ''] : [])]) {
        if (!posix.isAbsolute(d) || /[,:\0]/.test(d)) bad(`overlay mount of ${m.target}: layer dirs must be absolute, without ',' or ':' (${d})`);
      }
    } else if (m.type !== 'tmpfs') {
      bad(`unknown mount type ${String(m.type)}`);
    }
    for (const o of m.options ?? []) if (o.includes(',') || o === '') bad(`invalid mount option ${JSON.stringify(o)}`);
  }
}

export function mountOptions(m: ExtraMount): string {
  const opts = [...(m.options ?? [])];
  // An overlay mount is made aside, then bound at the target like a bind.
  if ((m.type === 'bind' || m.type === 'overlay') && !opts.includes('bind') && !opts.includes('rbind')) opts.unshift('rbind');
  if (m.readonly === true && !opts.includes('ro')) opts.push('ro');
  return opts.length === 0 ? 'rw' : opts.join(',');
}

export class NamespaceSandbox implements Sandbox {
  private readonly tools: HostTools;
  private readonly tmpDir: string;
  private readonly hostResolvConf: string;
  private readonly hostHosts: string;
  private facts: HostFacts | undefined;
  private toolsChecked = false;

  constructor(options: NamespaceSandboxOptions = {}) {
    this.tools = { ...DEFAULT_TOOLS, ...options.tools };
    this.tmpDir = options.tmpDir ?? tmpdir();
    this.hostResolvConf = options.hostResolvConf ?? '/etc/resolv.conf';
    this.hostHosts = options.hostHosts ?? '/etc/hosts';
  }

  private checkTools(network: RunSpec['network']): void {
    if (process.getuid?.() !== 0) {
      throw new SandboxError('running a RUN step needs root, or the tsbuild CLI as a non-root user (it re-executes itself in a user namespace)', { code: 'SANDBOX_NOT_ROOT' });
    }
    if (!this.toolsChecked) {
      for (const [k, p] of Object.entries(this.tools) as [keyof HostTools, string | undefined][]) {
        if (k === 'ip' || k === 'hostname' || p === undefined) continue;
        if (!existsSync(p)) throw new SandboxError(`${p} not found: install the Debian package ${TOOL_PACKAGES[k]}`, { code: 'SANDBOX_TOOL' });
      }
      this.toolsChecked = true;
    }
    if (network === 'none' && this.tools.ip === undefined) {
      const ip = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p));
      if (ip === undefined) throw new SandboxError('network none needs `ip` to bring lo up: install the Debian package iproute2', { code: 'SANDBOX_TOOL' });
      this.tools.ip = ip;
    }
    if (inUserNamespace() && this.tools.hostname === undefined) {
      const hn = ['/usr/bin/hostname', '/bin/hostname'].find((p) => existsSync(p));
      if (hn === undefined) throw new SandboxError('a RUN in a user namespace sets its hostname with `hostname`: install the Debian package hostname', { code: 'SANDBOX_TOOL' });
      this.tools.hostname = hn;
    }
  }

  async run(spec: RunSpec, signal?: AbortSignal): Promise<RunResult> {
    checkSpec(spec);
    this.checkTools(spec.network);
    if (signal?.aborted) throw new SandboxAbortError({ cause: signal.reason });
    const plain = spec.rootfs.plainDir;
    if (plain !== undefined) await ensureMountPoints(plain);
    await this.checkUpper(plain ?? spec.rootfs.upperDir);
    const facts = (this.facts ??= hostFacts());
    const ovl = plain !== undefined ? { data: '' } : overlayMountData(spec.initDir, spec.rootfs);

    const runDir = await mkdtemp(join(this.tmpDir, 'tsbuild-run-'));
    try {
      return await this.runIn(runDir, spec, ovl, facts, signal);
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  }

  /** The upper dir must not replace a mount point's parent by a non-directory (a reused upper dir). */
  private async checkUpper(upper: string): Promise<void> {
    for (const p of ['dev', 'proc', 'sys', 'etc']) {
      try {
        const st = await lstat(join(upper, p));
        if (!st.isDirectory()) throw new SandboxError(`the upper dir ${upper} replaces /${p} by a non-directory; cannot run in it`, { code: 'SANDBOX_UPPER' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }

  private async runIn(
    runDir: string,
    spec: RunSpec,
    ovl: { data: string; cwd?: string },
    facts: HostFacts,
    signal: AbortSignal | undefined,
  ): Promise<RunResult> {
    const merged = join(runDir, 'merged');
    const dev = join(runDir, 'dev');
    const etc = join(runDir, 'etc');
    await Promise.all([mkdir(merged, { mode: 0o755 }), mkdir(dev, { mode: 0o755 }), mkdir(etc, { mode: 0o755 })]);

    // /dev contents besides the device nodes (the setup copies those from the host's /dev).
    await Promise.all([
      mkdir(join(dev, 'pts'), { mode: 0o755 }),
      mkdir(join(dev, 'shm'), { mode: 0o755 }),
      mkdir(join(dev, 'mqueue'), { mode: 0o755 }),
      symlink('/proc/self/fd', join(dev, 'fd')),
      symlink('/proc/self/fd/0', join(dev, 'stdin')),
      symlink('/proc/self/fd/1', join(dev, 'stdout')),
      symlink('/proc/self/fd/2', join(dev, 'stderr')),
      symlink('pts/ptmx', join(dev, 'ptmx')),
      ...(facts.kcore ? [symlink('/proc/kcore', join(dev, 'core'))] : []),
    ]);

    // Generated /etc files (0644, like dockerd's).
    const hostText = async (p: string): Promise<string | undefined> => {
      try {
        return await readFile(p, 'utf8');
      } catch {
        return undefined;
      }
    };
    const hosts = hostsFile(spec.network, spec.hostname, spec.network === 'host' ? await hostText(this.hostHosts) : undefined);
    const resolv = (await hostText(this.hostResolvConf)) ?? '';
    await Promise.all([
      writeFile(join(etc, 'hosts'), hosts, { mode: 0o644 }),
      writeFile(join(etc, 'hostname'), hostnameFile(spec.hostname), { mode: 0o644 }),
      writeFile(join(etc, 'resolv.conf'), resolv, { mode: 0o644 }),
    ]);
    await Promise.all(['hosts', 'hostname', 'resolv.conf'].map((f) => chmod(join(etc, f), 0o644)));

    // The standard mounts, in dockerd 20.10 + runc's order and with their options (moby
    // oci/defaults.go at v20.10.24, then the container's resolv.conf/hostname/hosts binds, then
    // ReadonlyPaths re-mounted with the flags they had, then MaskedPaths: dirs get a read-only
    // tmpfs, files the container's own /dev/null). Two `mount -a` runs: the device nodes are
    // copied into the /dev tmpfs between them.
    const m = (p: string) => fstabEscape(merged + p);
    const early = [`proc ${m('/proc')} proc nosuid,noexec,nodev 0 0`, `tmpfs ${m('/dev')} tmpfs nosuid,strictatime,mode=755,size=65536k 0 0`];
    // A user namespace may mount sysfs only in a network namespace it owns: with the host's
    // network, bind the host's /sys read-only instead (as rootless runc does).
    const userns = inUserNamespace();
    const late: string[] = [
      `devpts ${m('/dev/pts')} devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5 0 0`,
      userns && spec.network !== 'none' ? `/sys ${m('/sys')} none rbind,ro,nosuid,noexec,nodev 0 0` : `sysfs ${m('/sys')} sysfs nosuid,noexec,nodev,ro 0 0`,
    ];
    if (facts.cgroup2) late.push(`cgroup2 ${m('/sys/fs/cgroup')} cgroup2 ro,nosuid,noexec,nodev 0 0`);
    late.push(
      `mqueue ${m('/dev/mqueue')} mqueue nosuid,noexec,nodev 0 0`,
      `shm ${m('/dev/shm')} tmpfs nosuid,noexec,nodev,mode=1777,size=65536k 0 0`,
    );
    for (const f of ['resolv.conf', 'hostname', 'hosts']) late.push(`${fstabEscape(join(etc, f))} ${m('/etc/' + f)} none bind 0 0`);
    for (const p of facts.readonly) late.push(`${m(p)} ${m(p)} none bind,ro,nosuid,nodev,noexec 0 0`);
    for (const { path, dir } of facts.masked) {
      late.push(dir ? `tmpfs ${m(path)} tmpfs ro 0 0` : `${m('/dev/null')} ${m(path)} none bind 0 0`);
    }
    const fstabEarly = join(runDir, 'fstab.early');
    const fstabPath = join(runDir, 'fstab');
    await Promise.all([
      writeFile(fstabEarly, early.join('\n') + '\n', { mode: 0o600 }),
      writeFile(fstabPath, late.join('\n') + '\n', { mode: 0o600 }),
    ]);

    const env: Record<string, string> = {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      LC_ALL: 'C',
      TSB_READY: join(runDir, 'ready'),
      TSB_CREATED: join(runDir, 'created'),
      TSB_MERGED: merged,
      TSB_OVL_DATA: ovl.data,
      TSB_PLAIN: spec.rootfs.plainDir ?? '',
      TSB_DEV: dev,
      TSB_FSTAB_EARLY: fstabEarly,
      TSB_FSTAB: fstabPath,
      TSB_HOSTNAME: spec.hostname,
      TSB_CWD: spec.cwd,
      TSB_MOUNT: this.tools.mount,
      TSB_CP: this.tools.cp,
      TSB_MKDIR: this.tools.mkdir,
      TSB_READLINK: this.tools.readlink,
    };
    if (userns) {
      env.TSB_USERNS = '1';
      env.TSB_HOSTNAME_TOOL = this.tools.hostname ?? 'hostname';
      env.TSB_HOSTNAME_FILE = join(etc, 'hostname');
    }
    if (ovl.cwd !== undefined) env.TSB_OVL_CWD = ovl.cwd;
    if (spec.network === 'none' && this.tools.ip !== undefined) env.TSB_IP = this.tools.ip;
    const extra = spec.extraMounts ?? [];
    env.TSB_NX = String(extra.length);
    for (const [i, x] of extra.entries()) {
      env[`TSB_X${i}_KIND`] = x.type;
      env[`TSB_X${i}_TGT`] = x.target;
      env[`TSB_X${i}_OPTS`] = mountOptions(x);
      let node = 'dir';
      if (x.type === 'overlay') {
        // Mounted at runDir/xN inside the namespace; the setup binds the source path inside it.
        // overlay needs two lowers without an upper, one with: distinct empty dirs fill up
        // (it refuses the same dir twice).
        const lowers = [...(x.lowerDirs ?? [])];
        for (let n = 0; lowers.length < (x.upperDir !== undefined ? 1 : 2); n++) {
          const empty = join(runDir, `x${i}.empty${n}`);
          await mkdir(empty, { mode: 0o755 });
          lowers.push(empty);
        }
        let data = [...overlayXattrOption(), `lowerdir=${lowers.join(':')}`].join(',');
        if (x.upperDir !== undefined) data += `,upperdir=${x.upperDir},workdir=${x.workDir ?? ''}`;
        if (data.length > 4000) throw new SandboxError(`mount from an image of ${lowers.length} layers: the overlay options are too long`, { code: 'SANDBOX_SPEC' });
        env[`TSB_X${i}_OVL`] = data;
        env[`TSB_X${i}_STAGE`] = join(runDir, `x${i}`);
        env[`TSB_X${i}_SRC`] = x.source ?? '/';
      } else if (x.type === 'bind') {
        const source = x.source as string;
        env[`TSB_X${i}_SRC`] = source;
        try {
          node = statSync(source).isDirectory() ? 'dir' : 'file';
        } catch (e) {
          throw new SandboxError(`bind mount source ${source}: ${(e as Error).message}`, { code: 'SANDBOX_SPEC', cause: e });
        }
      }
      env[`TSB_X${i}_NODE`] = node;
    }

    const { uid, gid, additionalGids } = spec.user;
    const chain = [
      this.tools.setpriv,
      `--regid=${gid}`,
      additionalGids.length > 0 ? `--groups=${additionalGids.join(',')}` : '--clear-groups',
      `--bounding-set=-all,${DOCKER_DEFAULT_CAPS.map((c) => '+' + c).join(',')}`,
      '--',
      this.tools.env,
      '-i',
      '--',
      ...spec.env,
      this.tools.unshare,
      `--root=${merged}`,
      `--wd=${spec.cwd}`,
      ...(uid !== 0 ? [`--setuid=${uid}`] : []),
      '--',
      ...spec.args,
    ];
    const nsFlags = ['--mount', '--pid', '--fork', '--uts', '--ipc', '--propagation', 'private', '--kill-child'];
    if (spec.network === 'none') nsFlags.push('--net');
    if (facts.cgroup2) nsFlags.push('--cgroup');

    // setpriv's parent-death signal: if tsbuild is killed (even with -9), the outer unshare
    // dies with it and --kill-child takes the whole PID namespace down.
    const result = await this.spawnTree(
      '/usr/bin/setpriv',
      ['--pdeathsig', 'KILL', '--', this.tools.unshare, ...nsFlags, '--', this.tools.sh, '-c', SETUP_SCRIPT, 'tsbuild-sandbox', ...chain],
      env,
      spec,
      signal,
    );

    await this.removeCreatedMountpoints(join(runDir, 'created'), spec.rootfs.plainDir ?? spec.rootfs.upperDir);

    if (result.aborted) throw new SandboxAbortError({ cause: signal?.reason });
    const control = result.control.trim();
    if (!existsSync(join(runDir, 'ready'))) {
      const detail = control.replace(/^tsbuild-sandbox: /gm, '');
      throw new SandboxError(`cannot set up the RUN sandbox${detail === '' ? '' : ': ' + detail}`, { code: 'SANDBOX_SETUP', detail });
    }
    const out: RunResult = { exitCode: result.exitCode, stderrTail: result.stderrTail };
    if (result.signal !== undefined) {
      out.signal = result.signal;
    } else if (result.exitCode === 1 && /sigprocmask unblock failed/.test(control)) {
      // util-linux 2.38 `unshare --fork` cannot re-raise SIGKILL (signal(SIGKILL, SIG_DFL) fails)
      // and exits 1 instead: the command (PID 1) was SIGKILLed (OOM killer, kill -9 from outside).
      out.exitCode = 128 + signalNumber('SIGKILL');
      out.signal = 'SIGKILL';
    }
    return out;
  }

  /**
   * Spawn the tree with stdout → onStdout, fd 3 → the command's stderr (onStderr and the tail),
   * fd 2 → the control channel (setup errors, the outer unshare's own messages).
   */
  private spawnTree(
    cmd: string,
    args: string[],
    env: Record<string, string>,
    spec: RunSpec,
    signal: AbortSignal | undefined,
  ): Promise<{ exitCode: number; signal?: string; stderrTail: string; control: string; aborted: boolean }> {
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env, detached: true });
      let tail = Buffer.alloc(0);
      const control: Buffer[] = [];
      let aborted = false;
      child.stdout?.on('data', (c: Buffer) => spec.onStdout?.(c));
      child.stderr?.on('data', (c: Buffer) => {
        if (control.length < 1024) control.push(c);
      });
      const cmdErr = child.stdio[3] as NodeJS.ReadableStream | null;
      cmdErr?.on('data', (c: Buffer) => {
        tail = tail.length + c.length > STDERR_KEEP ? Buffer.concat([tail, c]).subarray(-STDERR_KEEP) : Buffer.concat([tail, c]);
        spec.onStderr?.(c);
      });
      const onAbort = () => {
        aborted = true;
        if (child.pid !== undefined) killTree(child.pid);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (e) => {
        signal?.removeEventListener('abort', onAbort);
        reject(new SandboxError(`cannot run ${cmd}: ${e.message}`, { code: 'SANDBOX_TOOL', cause: e }));
      });
      child.on('close', (code, sig) => {
        signal?.removeEventListener('abort', onAbort);
        const lines = tail.toString('utf8').split('\n');
        if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
        const stderrTail = lines.slice(-STDERR_LINES).join('\n');
        const ctl = Buffer.concat(control).toString('utf8');
        if (sig !== null) resolve({ exitCode: 128 + signalNumber(sig), signal: sig, stderrTail, control: ctl, aborted });
        else resolve({ exitCode: code ?? -1, stderrTail, control: ctl, aborted });
      });
    });
  }

  /** Extra-mount targets the setup had to create: remove them again from the upper dir (deepest first, only if still empty). */
  private async removeCreatedMountpoints(listFile: string, upper: string): Promise<void> {
    let list: string;
    try {
      list = await readFile(listFile, 'utf8');
    } catch {
      return;
    }
    const paths = list.split('\0').filter((p) => p !== '');
    for (const p of paths.reverse()) {
      const host = join(upper, p);
      try {
        const st = await lstat(host);
        if (st.isDirectory()) await rmdir(host);
        else if (st.isFile() && st.size === 0) await unlink(host);
      } catch {
        /* not empty, or not there (e.g. the target existed below): leave it */
      }
    }
  }
}

/**
 * Kill a RUN: the PID namespace's init first (the kernel then kills everything in the namespace,
 * including processes that left our process group), then the whole process group.
 */
function killTree(pid: number): void {
  for (const child of childrenOf(pid)) {
    try {
      process.kill(child, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter((s) => s.trim() !== '')
      .map(Number);
  } catch {
    // No CONFIG_PROC_CHILDREN: scan /proc for the parent pid.
    const out: number[] = [];
    for (const name of readdirSync('/proc')) {
      if (!/^[0-9]+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === pid) out.push(Number(name));
      } catch {
        /* raced with an exit */
      }
    }
    return out;
  }
}
