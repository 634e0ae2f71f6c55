/**
 * OciRuntimeSandbox: runs a RUN step with an OCI runtime (runc or crun, the Debian packages), from
 * a config.json equivalent to what NamespaceSandbox sets up by hand:
 *
 *   node ─spawn─▶ unshare --mount --propagation private
 *                   └▶ /bin/sh -c OCI_HOST_SCRIPT
 *                        mounts overlay(init:lowers, upper) — or binds the copy snapshotter's plain
 *                        dir — on <run>/bundle/rootfs inside the private mount namespace (nothing
 *                        reaches the host mount table, even on a crash); creates the cwd and the
 *                        extra mount targets in scope (recording the latter, to remove them from
 *                        the layer afterwards)
 *                     └exec▶ <runtime> --root <run>/state --log <run>/runtime.log --log-format json
 *                                run --bundle <run>/bundle tsbuild-<random>
 *                              (namespaces pid/ipc/uts/mount [+network, +cgroup on cgroup v2],
 *                               Docker's mounts, caps, masked and read-only paths, the generated
 *                               /etc/hosts, /etc/hostname, /etc/resolv.conf; the command is PID 1)
 *
 * The runtime's stdio is passed through to the command: stdout → onStdout, stderr (fd 3 of the
 * host script) → onStderr and the tail; fd 2 of the host script is the control channel. A
 * poststart hook creates <run>/ready, so a runtime failure before the command started is told
 * apart from the command's own exit status: a missing executable becomes 127 and a non-executable
 * one 126 (like dockerd), anything else a SandboxError with the runtime's message. runc and crun
 * report a command killed by signal n as 128+n; `signal` is then set (a command that exits 128+n
 * by itself cannot be told apart).
 *
 * Environment: exactly spec.env, except that both runtimes append HOME (from the image's
 * /etc/passwd) when it is missing — as under Docker; dockerRunEnv always sets it anyway.
 *
 * cgroups: runc puts the container in a cgroup named after it, below its own (cgroupsPath is
 * relative), with Docker's device rules; crun runs with `--cgroup-manager=disabled`, so the command
 * stays in tsbuild's own cgroups as with the namespace sandbox (crun 1.8 would put a relative
 * cgroupsPath at the hierarchy's root, outside a memory limit set on tsbuild, and refuses to start
 * on a hybrid v1+v2 host at all, even without a manager: there the host script unmounts the v2
 * hierarchy in its private mount namespace).
 *
 * Abort: `<runtime> kill <id> KILL` (the PID namespace dies with its init), then the runtime
 * process group. Always, after the run: `<runtime> delete --force <id>`, then the run dir (bundle,
 * state, generated files) is removed.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync, statfsSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { delimiter, join, posix } from 'node:path';
import { ensureMountPoints } from '../snapshot/copy-apply.js';
import { overlayMountData } from '../snapshot/overlay.js';
import { inUserNamespace } from '../sys/userns.js';
import { hostnameFile, hostsFile } from './env.js';
import { checkSpec, DOCKER_DEFAULT_CAPS, MASKED_PATHS, mountOptions, READONLY_PATHS, SandboxAbortError, SandboxError } from './namespace.js';
import { SCRIPT_FUNCTIONS } from './setup-script.js';
import type { RunResult, RunSpec, Sandbox } from './types.js';

export type OciRuntimeName = 'runc' | 'crun';

export interface OciRuntimeSandboxOptions {
  /** Where per-run dirs go (bundle, runtime state, generated /etc files); default os.tmpdir(). */
  tmpDir?: string;
  /** Source of the generated resolv.conf (default /etc/resolv.conf) and, for network 'host', hosts (/etc/hosts). */
  hostResolvConf?: string;
  hostHosts?: string;
  /**
   * The runtime's state dir (`--root`) for all runs of this sandbox; default: a fresh one inside
   * each run's dir, removed with it. Either way it is never the runtime's system-wide default.
   */
  stateDir?: string;
  /** Host tools of the host script (util-linux, coreutils, dash). */
  tools?: Partial<OciHostTools>;
}

export interface OciHostTools {
  unshare: string;
  mount: string;
  umount: string;
  mkdir: string;
  readlink: string;
  sh: string;
}

const DEFAULT_TOOLS: OciHostTools = {
  unshare: '/usr/bin/unshare',
  mount: '/usr/bin/mount',
  umount: '/usr/bin/umount',
  mkdir: '/usr/bin/mkdir',
  readlink: '/usr/bin/readlink',
  sh: '/bin/sh',
};

const CGROUP2_SUPER_MAGIC = 0x63677270;
const STDERR_KEEP = 64 * 1024;
const STDERR_LINES = 20;

/** One OCI mount (runtime-spec config.md). */
export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

/** The part of an OCI runtime-spec config.json that tsbuild writes. */
export interface OciConfig {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids: number[]; umask: number };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable: string[]; ambient: string[] };
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  hooks: { poststart: { path: string; args: string[] }[] };
  linux: {
    namespaces: { type: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
    cgroupsPath: string;
    resources: { devices: { allow: boolean; type?: string; major?: number; minor?: number; access: string }[] };
  };
}

export interface OciConfigInputs {
  /** Absolute host path of the mounted rootfs (root.path). */
  rootfsPath: string;
  /** The generated files bound over /etc/hosts, /etc/hostname, /etc/resolv.conf. */
  etc: { hosts: string; hostname: string; resolvConf: string };
  /** Created when the command has started (a poststart hook run by `sh` on the host). */
  readyFile: string;
  /** For the hook. */
  sh: string;
  /** linux.cgroupsPath: relative, so the runtime nests it under its own cgroup. */
  cgroupsPath: string;
  /** Host on cgroup v2: a cgroup namespace and a cgroup2 mount, as the namespace sandbox does. */
  cgroup2: boolean;
}

/**
 * The config.json of a RUN: dockerd 20.10's spec for a build container (moby oci/defaults.go,
 * daemon/oci_linux.go) reduced to what NamespaceSandbox does — no seccomp or AppArmor profile,
 * no rlimits — with Docker's device cgroup rules.
 */
export function ociConfig(spec: RunSpec, inputs: OciConfigInputs): OciConfig {
  const caps = DOCKER_DEFAULT_CAPS.map((c) => 'CAP_' + c.toUpperCase());
  const root = spec.user.uid === 0;
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ];
  if (inputs.cgroup2) mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup2', source: 'cgroup2', options: ['ro', 'nosuid', 'noexec', 'nodev'] });
  mounts.push(
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/etc/resolv.conf', type: 'bind', source: inputs.etc.resolvConf, options: ['rbind', 'rprivate'] },
    { destination: '/etc/hostname', type: 'bind', source: inputs.etc.hostname, options: ['rbind', 'rprivate'] },
    { destination: '/etc/hosts', type: 'bind', source: inputs.etc.hosts, options: ['rbind', 'rprivate'] },
  );
  for (const x of spec.extraMounts ?? []) {
    const options = mountOptions(x).split(',');
    if (x.type === 'bind') mounts.push({ destination: x.target, type: 'bind', source: x.source as string, options });
    else mounts.push({ destination: x.target, type: 'tmpfs', source: 'tmpfs', options });
  }
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (spec.network === 'none') namespaces.push({ type: 'network' });
  if (inputs.cgroup2) namespaces.push({ type: 'cgroup' });
  const dev = (type: string, major: number, minor: number | undefined, access = 'rwm') => ({ allow: true, type, major, ...(minor !== undefined ? { minor } : {}), access });
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: spec.user.uid, gid: spec.user.gid, additionalGids: [...spec.user.additionalGids], umask: 0o022 },
      args: [...spec.args],
      env: [...spec.env],
      cwd: spec.cwd,
      // Like setpriv --bounding-set + setuid: root keeps Docker's set, other users start with none.
      capabilities: { bounding: caps, effective: root ? caps : [], permitted: root ? caps : [], inheritable: [], ambient: [] },
      noNewPrivileges: false,
    },
    root: { path: inputs.rootfsPath, readonly: false },
    hostname: spec.hostname,
    mounts,
    // The runtime writes the container state to a hook's stdin, and crun fails the run (after the
    // command started) on EPIPE: drain it, with shell builtins only (a hook gets no PATH).
    hooks: { poststart: [{ path: inputs.sh, args: ['sh', '-c', ': >"$0"; while read -r _; do :; done', inputs.readyFile] }] },
    linux: {
      namespaces,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      cgroupsPath: inputs.cgroupsPath,
      // moby oci/defaults.go + oci.DefaultSimpleDevices / the daemon's defaults for a container
      // that is not privileged: deny all, allow mknod of any node, the standard nodes and ptys.
      resources: {
        devices: [
          { allow: false, access: 'rwm' },
          { allow: true, type: 'c', access: 'm' },
          { allow: true, type: 'b', access: 'm' },
          dev('c', 1, 3),
          dev('c', 1, 5),
          dev('c', 1, 7),
          dev('c', 1, 8),
          dev('c', 1, 9),
          dev('c', 5, 0),
          dev('c', 5, 1),
          dev('c', 5, 2),
          dev('c', 136, undefined),
          dev('c', 10, 200),
        ],
      },
    },
  };
}

/**
 * Runs as the only process of a private mount namespace: mounts the rootfs on $TSB_MERGED,
 * creates the cwd and the extra mount targets in scope, then execs the runtime (its arguments).
 */
export const OCI_HOST_SCRIPT =
  String.raw`set -eu
umask 022
M=$TSB_MERGED

` +
  SCRIPT_FUNCTIONS +
  String.raw`
if [ -n "$\{TSB_PLAIN:-}" ]; then
	"$TSB_MOUNT" --bind -- "$TSB_PLAIN" "$M"
else
	if [ -n "$\{TSB_OVL_CWD:-}" ]; then cd "$TSB_OVL_CWD"; fi
	"$TSB_MOUNT" -t overlay -o "$TSB_OVL_DATA" overlay "$M"
fi
cd /
# crun will not start on a hybrid cgroup host; it runs without a cgroup manager, so the v2
# hierarchy is just hidden from it, in this mount namespace only.
if [ -n "$\{TSB_HIDE:-}" ]; then "$TSB_UMOUNT" -l -- "$TSB_HIDE"; fi
i=0
while [ "$i" -lt "$\{TSB_NX:-0}" ]; do
	eval "_tg=\$TSB_X$\{i}_TGT _d=\$TSB_X$\{i}_NODE"
	resolve "$M" "$_tg"
	mkpath "$M" "$R" "$_d" 1
	i=$((i + 1))
done
resolve "$M" "$TSB_CWD"
mkpath "$M" "$R" dir 0
exec 2>&3 3>&-
exec "$@"
`.replaceAll('$\\{', '${');

function signalName(n: number): string | undefined {
  for (const [name, num] of Object.entries(osConstants.signals as Record<string, number>)) if (num === n) return name;
  return undefined;
}

/** Find a runtime: an absolute path as is, else in PATH plus the sbin dirs (runc lives in /usr/sbin). */
export function findRuntime(runtime: string): string | undefined {
  if (runtime.includes('/')) return existsSync(runtime) ? runtime : undefined;
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    if (d === '') continue;
    const p = join(d, runtime);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

interface RuntimeLogEntry {
  level?: string;
  msg?: string;
}

/** The runtime's error messages from its JSON log (runc: {"level","msg"}, crun: {"level","msg"}). */
async function runtimeErrors(logFile: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(logFile, 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const e = JSON.parse(line) as RuntimeLogEntry;
      if ((e.level === 'error' || e.level === 'fatal') && typeof e.msg === 'string') out.push(e.msg);
    } catch {
      out.push(line);
    }
  }
  return out;
}

export class OciRuntimeSandbox implements Sandbox {
  readonly runtime: string;
  private readonly tools: OciHostTools;
  private readonly tmpDir: string;
  private readonly hostResolvConf: string;
  private readonly hostHosts: string;
  private readonly stateDir: string | undefined;
  private binary: string | undefined;
  private cgroup2: boolean | undefined;
  private isCrun = false;
  /** A cgroup v2 hierarchy next to v1 controllers ("hybrid"), which crun refuses to start on. */
  private hybridUnified: string | undefined;

  /** `runtime`: 'runc', 'crun', or a path to an OCI runtime binary with runc's command line. */
  constructor(runtime: string, options: OciRuntimeSandboxOptions = {}) {
    this.runtime = runtime;
    this.tools = { ...DEFAULT_TOOLS, ...options.tools };
    this.tmpDir = options.tmpDir ?? tmpdir();
    this.hostResolvConf = options.hostResolvConf ?? '/etc/resolv.conf';
    this.hostHosts = options.hostHosts ?? '/etc/hosts';
    this.stateDir = options.stateDir;
  }

  private check(): string {
    if (process.getuid?.() !== 0) {
      throw new SandboxError(`running a RUN step with ${this.runtime} needs root`, { code: 'SANDBOX_NOT_ROOT' });
    }
    if (inUserNamespace()) {
      // Rootless: the runtime would need its own rootless setup (cgroups via systemd, no mknod).
      throw new SandboxError(`--runtime ${this.runtime} is not supported rootless (tsbuild runs in a user namespace); leave --runtime out to use the built-in sandbox`, { code: 'SANDBOX_ROOTLESS' });
    }
    if (this.binary === undefined) {
      const found = findRuntime(this.runtime);
      if (found === undefined) {
        const pkg = posix.basename(this.runtime);
        throw new SandboxError(`OCI runtime ${this.runtime} not found${pkg === 'runc' || pkg === 'crun' ? `: install the Debian package ${pkg}` : ''}`, { code: 'SANDBOX_TOOL' });
      }
      for (const p of Object.values(this.tools)) {
        if (!existsSync(p)) throw new SandboxError(`${p} not found (util-linux, mount, coreutils, dash)`, { code: 'SANDBOX_TOOL' });
      }
      this.binary = found;
      this.isCrun = posix.basename(found) === 'crun';
    }
    return this.binary;
  }

  async run(spec: RunSpec, signal?: AbortSignal): Promise<RunResult> {
    checkSpec(spec);
    const binary = this.check();
    if (signal?.aborted) throw new SandboxAbortError({ cause: signal.reason });
    const plain = spec.rootfs.plainDir;
    if (plain !== undefined) await ensureMountPoints(plain);
    await checkRootDirs(plain ?? spec.rootfs.upperDir);
    const ovl = plain !== undefined ? { data: '' } : overlayMountData(spec.initDir, spec.rootfs);
    if (this.cgroup2 === undefined) {
      const fsType = (p: string) => {
        try {
          return statfsSync(p).type;
        } catch {
          return undefined;
        }
      };
      this.cgroup2 = fsType('/sys/fs/cgroup') === CGROUP2_SUPER_MAGIC;
      if (!this.cgroup2 && fsType('/sys/fs/cgroup/unified') === CGROUP2_SUPER_MAGIC) this.hybridUnified = '/sys/fs/cgroup/unified';
    }

    const runDir = await mkdtemp(join(this.tmpDir, 'tsbuild-oci-'));
    const id = `tsbuild-${randomBytes(8).toString('hex')}`;
    const state = this.stateDir ?? join(runDir, 'state');
    try {
      return await this.runIn(binary, runDir, id, state, spec, ovl, signal);
    } finally {
      await this.runtimeCommand(binary, [...this.globalArgs(state), 'delete', '--force', id]);
      await rm(runDir, { recursive: true, force: true });
    }
  }

  /** The runtime's global options: its state dir; crun runs without a cgroup manager (see the class comment). */
  private globalArgs(state: string): string[] {
    return ['--root', state, ...(this.isCrun ? ['--cgroup-manager=disabled'] : [])];
  }

  private async runIn(
    binary: string,
    runDir: string,
    id: string,
    state: string,
    spec: RunSpec,
    ovl: { data: string; cwd?: string },
    signal: AbortSignal | undefined,
  ): Promise<RunResult> {
    const bundle = join(runDir, 'bundle');
    const rootfs = join(bundle, 'rootfs');
    const etc = join(runDir, 'etc');
    await mkdir(rootfs, { recursive: true, mode: 0o755 });
    await Promise.all([mkdir(etc, { mode: 0o755 }), mkdir(state, { recursive: true, mode: 0o700 })]);

    const hostText = async (p: string): Promise<string | undefined> => {
      try {
        return await readFile(p, 'utf8');
      } catch {
        return undefined;
      }
    };
    const files = { hosts: join(etc, 'hosts'), hostname: join(etc, 'hostname'), resolvConf: join(etc, 'resolv.conf') };
    await Promise.all([
      writeFile(files.hosts, hostsFile(spec.network, spec.hostname, spec.network === 'host' ? await hostText(this.hostHosts) : undefined)),
      writeFile(files.hostname, hostnameFile(spec.hostname)),
      writeFile(files.resolvConf, (await hostText(this.hostResolvConf)) ?? ''),
    ]);
    await Promise.all(Object.values(files).map((f) => chmod(f, 0o644)));

    const ready = join(runDir, 'ready');
    const config = ociConfig(spec, {
      rootfsPath: rootfs,
      etc: files,
      readyFile: ready,
      sh: this.tools.sh,
      cgroupsPath: id,
      cgroup2: this.cgroup2 === true,
    });
    await writeFile(join(bundle, 'config.json'), JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });

    const env: Record<string, string> = {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      LC_ALL: 'C',
      TSB_MERGED: rootfs,
      TSB_OVL_DATA: ovl.data,
      TSB_PLAIN: spec.rootfs.plainDir ?? '',
      TSB_CREATED: join(runDir, 'created'),
      TSB_CWD: spec.cwd,
      TSB_MOUNT: this.tools.mount,
      TSB_MKDIR: this.tools.mkdir,
      TSB_READLINK: this.tools.readlink,
    };
    if (ovl.cwd !== undefined) env['TSB_OVL_CWD'] = ovl.cwd;
    if (this.isCrun && this.hybridUnified !== undefined) {
      env['TSB_HIDE'] = this.hybridUnified;
      env['TSB_UMOUNT'] = this.tools.umount;
    }
    const extra = spec.extraMounts ?? [];
    env['TSB_NX'] = String(extra.length);
    for (const [i, x] of extra.entries()) {
      // The build binds a copy instead (exec/run-step.ts): only the namespace sandbox merges layers.
      if (x.type === 'overlay') throw new SandboxError(`an overlay mount at ${x.target} is not supported with an OCI runtime`, { code: 'SANDBOX_SPEC' });
      env[`TSB_X${i}_TGT`] = x.target;
      let node = 'dir';
      if (x.type === 'bind') {
        try {
          node = statSync(x.source as string).isDirectory() ? 'dir' : 'file';
        } catch (e) {
          throw new SandboxError(`bind mount source ${x.source}: ${(e as Error).message}`, { code: 'SANDBOX_SPEC', cause: e });
        }
      }
      env[`TSB_X${i}_NODE`] = node;
    }

    const logFile = join(runDir, 'runtime.log');
    const runtimeArgs = [binary, ...this.globalArgs(state), '--log', logFile, '--log-format', 'json', 'run', '--bundle', bundle, id];
    const result = await this.spawnTree(
      [this.tools.unshare, '--mount', '--propagation', 'private', '--', this.tools.sh, '-c', OCI_HOST_SCRIPT, 'tsbuild-oci', ...runtimeArgs],
      env,
      spec,
      signal,
      binary,
      state,
      id,
    );

    await removeCreated(join(runDir, 'created'), spec.rootfs.plainDir ?? spec.rootfs.upperDir);
    if (result.aborted) throw new SandboxAbortError({ cause: signal?.reason });

    if (!existsSync(ready)) {
      const control = result.control.trim().replace(/^tsbuild-sandbox: /gm, '');
      const errors = await runtimeErrors(logFile);
      const detail = [control, ...errors].filter((s) => s !== '').join('\n') || result.stderrTail || `${posix.basename(binary)} exited with ${result.exitCode}`;
      // dockerd's translation of a start error (daemon/start.go): the executable is missing or not executable.
      // runc 1.1: `exec: "/x": stat /x: no such file or directory`, `exec: "x": executable file not
      // found in $PATH`, `exec: "/x": permission denied`; crun 1.8: `executable file `x` not found
      // in $PATH: No such file or directory`, `open executable: Permission denied`.
      if (control === '' && /executable file not found|executable file `.*` not found|exec: .*(no such file or directory|not a directory)|open executable: No such file/i.test(detail)) {
        return { exitCode: 127, stderrTail: tail(detail) };
      }
      if (control === '' && /exec: .*permission denied|open executable: Permission denied|exec(ve)?\b.*Permission denied/i.test(detail)) {
        return { exitCode: 126, stderrTail: tail(detail) };
      }
      throw new SandboxError(`cannot set up the RUN sandbox (${posix.basename(binary)}): ${detail}`, { code: 'SANDBOX_SETUP', detail });
    }
    const out: RunResult = { exitCode: result.exitCode, stderrTail: result.stderrTail };
    if (result.signal !== undefined) {
      out.signal = result.signal;
    } else if (result.exitCode > 128 && result.exitCode <= 128 + 64) {
      const name = signalName(result.exitCode - 128);
      if (name !== undefined) out.signal = name;
    }
    return out;
  }

  /** `<runtime> --root … <cmd>`, ignoring failures (e.g. a container that is already gone). */
  private runtimeCommand(binary: string, args: string[]): Promise<void> {
    return new Promise((resolve) => {
      const child = spawn(binary, args, { stdio: 'ignore', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } });
      child.on('error', () => resolve());
      child.on('close', () => resolve());
    });
  }

  private spawnTree(
    argv: string[],
    env: Record<string, string>,
    spec: RunSpec,
    signal: AbortSignal | undefined,
    binary: string,
    state: string,
    id: string,
  ): Promise<{ exitCode: number; signal?: string; stderrTail: string; control: string; aborted: boolean }> {
    return new Promise((resolve, reject) => {
      // If tsbuild dies, so does the host script (and the runtime it waits for).
      const child = spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env, detached: true });
      let tailBuf = Buffer.alloc(0);
      const control: Buffer[] = [];
      let aborted = false;
      let killTimer: NodeJS.Timeout | undefined;
      child.stdout?.on('data', (c: Buffer) => spec.onStdout?.(c));
      child.stderr?.on('data', (c: Buffer) => {
        if (control.length < 1024) control.push(c);
      });
      const cmdErr = child.stdio[3] as NodeJS.ReadableStream | null;
      cmdErr?.on('data', (c: Buffer) => {
        tailBuf = tailBuf.length + c.length > STDERR_KEEP ? Buffer.concat([tailBuf, c]).subarray(-STDERR_KEEP) : Buffer.concat([tailBuf, c]);
        spec.onStderr?.(c);
      });
      const onAbort = () => {
        aborted = true;
        // The container's init first (its PID namespace dies with it), then the runtime itself.
        void this.runtimeCommand(binary, [...this.globalArgs(state), 'kill', id, 'KILL']);
        killTimer = setTimeout(() => {
          try {
            if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, 1000);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (e) => {
        signal?.removeEventListener('abort', onAbort);
        reject(new SandboxError(`cannot run ${argv[0]}: ${e.message}`, { code: 'SANDBOX_TOOL', cause: e }));
      });
      child.on('close', (code, sig) => {
        signal?.removeEventListener('abort', onAbort);
        if (killTimer !== undefined) clearTimeout(killTimer);
        const stderrTail = tail(tailBuf.toString('utf8'));
        const ctl = Buffer.concat(control).toString('utf8');
        if (sig !== null) resolve({ exitCode: 128 + ((osConstants.signals as Record<string, number>)[sig] ?? 0), signal: sig, stderrTail, control: ctl, aborted });
        else resolve({ exitCode: code ?? -1, stderrTail, control: ctl, aborted });
      });
    });
  }
}

function tail(text: string): string {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.slice(-STDERR_LINES).join('\n');
}

/** The rootfs's top-level mount point parents must be directories (a reused upper dir may replace them). */
async function checkRootDirs(dir: string): Promise<void> {
  for (const p of ['dev', 'proc', 'sys', 'etc']) {
    try {
      const st = await lstat(join(dir, p));
      if (!st.isDirectory()) throw new SandboxError(`${dir} replaces /${p} by a non-directory; cannot run in it`, { code: 'SANDBOX_UPPER' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

/** Extra-mount targets the host script created: removed again (deepest first, only if still empty). */
async function removeCreated(listFile: string, dir: string): Promise<void> {
  let list: string;
  try {
    list = await readFile(listFile, 'utf8');
  } catch {
    return;
  }
  for (const p of list.split('\0').filter((s) => s !== '').reverse()) {
    const host = join(dir, p);
    try {
      const st = await lstat(host);
      if (st.isDirectory()) await rmdir(host);
      else if (st.isFile() && st.size === 0) await unlink(host);
    } catch {
      /* not empty, or gone */
    }
  }
}
