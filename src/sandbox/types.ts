import type { RootfsSpec } from '../snapshot/types.js';

/** A mount added on top of the standard ones, after them (so it may cover e.g. /dev/shm). */
export interface ExtraMount {
  type: 'bind' | 'tmpfs' | 'overlay';
  /**
   * bind: absolute host path (file or dir). overlay: the path inside the overlay to mount
   * (default /), resolved with symlinks followed inside it.
   */
  source?: string;
  /**
   * overlay (RUN --mount from=<stage|image>): that image's layer dirs, top-most first, merged in
   * the RUN's own mount namespace; read-only unless upperDir/workDir (a throwaway upper) are given.
   * Only the namespace sandbox mounts these.
   */
  lowerDirs?: string[];
  upperDir?: string;
  workDir?: string;
  /** Absolute path inside the rootfs; symlinks are followed inside the rootfs. Created if missing, and removed from the upper dir afterwards. */
  target: string;
  readonly?: boolean;
  /** More mount options (no commas inside one). bind defaults to `rbind`; tmpfs to none. */
  options?: string[];
}

/** One RUN: what to execute, in which rootfs, as whom. */
export interface RunSpec {
  rootfs: RootfsSpec;
  /** The init layer (see snapshot/overlay.ts createInitLayer); mounted as the top-most lowerdir. */
  initDir: string;
  /** argv, already shell-wrapped by the caller (e.g. ['/bin/sh', '-c', 'make']). */
  args: string[];
  /** The exact environment, K=V (see env.ts dockerRunEnv for Docker's PATH/HOSTNAME/HOME). */
  env: string[];
  /** Absolute; created as root, mode 0755, inside the rootfs if missing (symlinks followed in scope), like dockerd. */
  cwd: string;
  /** Numeric ids (users.ts resolveUser). additionalGids are the supplementary groups, exactly (Docker lists the primary gid first). */
  user: { uid: number; gid: number; additionalGids: number[] };
  hostname: string;
  /** 'default' is the host network here too (no bridge); 'none' is a new netns with only lo, up. */
  network: 'default' | 'host' | 'none';
  extraMounts?: ExtraMount[];
  onStdout?(chunk: Buffer): void;
  onStderr?(chunk: Buffer): void;
}

export interface RunResult {
  /** The command's exit status; 128+n when killed by signal n (as a shell reports it). */
  exitCode: number;
  /** Set when the command was killed by a signal, e.g. 'SIGKILL'. */
  signal?: string;
  /** The last ~20 lines of stderr. */
  stderrTail: string;
}

export interface Sandbox {
  /** Resolves with the command's status; rejects (SandboxError) when the sandbox itself cannot be set up, and with an AbortError when aborted. */
  run(spec: RunSpec, signal?: AbortSignal): Promise<RunResult>;
}
