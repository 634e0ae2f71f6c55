/** RUN through the namespace sandbox: user resolution, Docker's environment, the init layer, mounts. */
import { existsSync, statSync } from 'node:fs';
import { chmod, chown, mkdtemp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TsbuildError } from '../errors.js';
import { processTmpDir } from '../store/process-tmp.js';
import type { RunMount } from '../instructions/types.js';
import { dockerRunEnv } from '../sandbox/env.js';
import type { ExtraMount, Sandbox } from '../sandbox/types.js';
import { resolveUser } from '../sandbox/users.js';
import { createInitLayer, resolveLayeredPath } from '../snapshot/overlay.js';
import { prepareCopySnapshot } from '../snapshot/copy.js';
import { StepFailedError, type RunStepRequest } from './build.js';
import { readImageText } from './layer-files.js';

/** `--secret id=…,src=FILE|env=VAR`: where a secret's value comes from. */
export interface SecretSource {
  src?: string;
  env?: string;
}

export interface RunStepDeps {
  secrets?: Readonly<Record<string, SecretSource>>;
  /** `--ssh id[=socket]`: agent sockets by id. */
  ssh?: Readonly<Record<string, string>>;
  sandbox: Sandbox;
  /** Scratch space for init layers and heredoc scripts (inside the store root). */
  tmpDir: string;
  /** Persistent RUN --mount=type=cache directories. */
  cacheDir: string;
  contextDir: string;
  /**
   * Whether the sandbox merges image layers itself for RUN --mount from=… (the namespace
   * sandbox, where overlay mounts work); otherwise a copy of the image is bound.
   */
  overlayMounts?: boolean;
}

/** A secret's bytes, or undefined when it was not provided. */
async function secretValue(id: string, deps: RunStepDeps): Promise<Buffer | undefined> {
  const source = deps.secrets?.[id];
  if (!source) return undefined;
  if (source.env !== undefined) {
    const v = process.env[source.env];
    return v === undefined ? undefined : Buffer.from(v);
  }
  return source.src === undefined ? undefined : readFile(source.src);
}

interface PreparedMounts {
  mounts: ExtraMount[];
  /** Variables the mounts add to the RUN's environment (secret env=, SSH_AUTH_SOCK). */
  env: string[];
}

/**
 * RUN --mount: tmpfs, cache dirs kept under the store root, read-only binds of
 * the context, secrets (files on tmpfs outside the store, never in a layer, the
 * history or the cache key) and ssh agent sockets.
 */
async function mountsFor(mounts: RunMount[], deps: RunStepDeps, secretDir: string, run: { sources: Record<number, string[]>; scratch: string; cleanups: (() => Promise<void>)[] }): Promise<PreparedMounts> {
  const out: PreparedMounts = { mounts: [], env: [] };
  let sshCount = 0;
  for (const [i, m] of mounts.entries()) {
    const target = m.options['target'];
    const readonly = m.options['readonly'] === 'true';
    const from = m.options['from'];
    const layers = from !== undefined ? run.sources[i] : undefined;
    if (from !== undefined && layers === undefined) throw new TsbuildError('MOUNT_FROM', `RUN --mount from=${from}: no image was resolved for it`);
    if (m.type === 'tmpfs') {
      out.mounts.push({ type: 'tmpfs', target: target!, ...(m.options['size'] ? { options: [`size=${m.options['size']}`] } : {}) });
    } else if (m.type === 'cache') {
      const id = (m.options['id'] ?? target!).replace(/[^A-Za-z0-9_.-]/g, '_');
      const dir = join(deps.cacheDir, id);
      // from=: a new cache starts as a copy of that image's source path (BuildKit's seed).
      const fresh = !existsSync(dir);
      if (layers !== undefined && fresh) await seedCache(dir, layers, m.options['source'] ?? '/', run.scratch);
      await mkdir(dir, { recursive: true });
      // Like BuildKit, uid/gid/mode shape a new cache dir (umask aside); later builds find it as RUNs left it.
      if (fresh && layers === undefined) {
        await chmod(dir, m.options['mode'] ? parseInt(m.options['mode'], 8) : 0o755);
        await chown(dir, Number(m.options['uid'] ?? 0), Number(m.options['gid'] ?? 0));
      }
      out.mounts.push({ type: 'bind', source: dir, target: target!, readonly });
    } else if (m.type === 'bind' && layers !== undefined) {
      // A stage's or image's rootfs: read-only unless `rw`, whose writes go to a throwaway upper dir.
      const rw = m.options['readonly'] === 'false';
      const source = m.options['source'] ?? '/';
      if (deps.overlayMounts === true) {
        const upper = rw ? await mkdtemp(join(run.scratch, `mount-${i}-`)) : undefined;
        if (upper) await Promise.all([mkdir(join(upper, 'upper')), mkdir(join(upper, 'work'))]);
        out.mounts.push({ type: 'overlay', lowerDirs: layers, source, target: target!, readonly: !rw, ...(upper ? { upperDir: join(upper, 'upper'), workDir: join(upper, 'work') } : {}) });
      } else {
        const copy = await prepareCopySnapshot(layers, { tmpDir: run.scratch });
        run.cleanups.push(() => copy.dispose());
        out.mounts.push({ type: 'bind', source: await pathInCopy(copy.dir, source, from!), target: target!, readonly: !rw });
      }
    } else if (m.type === 'bind' && m.options['from'] === undefined) {
      // A bind from the context is read-only unless `rw`.
      out.mounts.push({ type: 'bind', source: join(deps.contextDir, m.options['source'] ?? '.'), target: target!, readonly: m.options['readonly'] !== 'false' });
    } else if (m.type === 'secret') {
      const id = m.options['id']!;
      const value = await secretValue(id, deps);
      if (value === undefined) {
        if (m.options['required'] === 'false') continue;
        throw new TsbuildError('SECRET', `secret ${id}: not provided (pass --secret id=${id},src=FILE or env=VAR, or mount it with required=false)`);
      }
      if (m.options['env'] !== undefined) out.env.push(`${m.options['env']}=${value.toString('utf8')}`);
      if (target !== undefined) {
        const file = join(secretDir, `secret-${i}`);
        await writeFile(file, value, { mode: m.options['mode'] ? parseInt(m.options['mode'], 8) : 0o400 });
        if (m.options['uid'] !== undefined || m.options['gid'] !== undefined) await chown(file, Number(m.options['uid'] ?? 0), Number(m.options['gid'] ?? 0));
        out.mounts.push({ type: 'bind', source: file, target, readonly: true });
      }
    } else if (m.type === 'ssh') {
      const id = m.options['id'] ?? 'default';
      const socket = deps.ssh?.[id];
      if (socket === undefined && m.options['required'] !== 'false') throw new TsbuildError('SSH', `ssh agent ${id}: not provided (pass --ssh ${id}[=SOCKET])`);
      // As in BuildKit (llb exec): default targets count ssh mounts only, and
      // SSH_AUTH_SOCK names the first one even when an optional agent is absent.
      const where = target ?? `/run/buildkit/ssh_agent.${sshCount}`;
      if (sshCount++ === 0) out.env.push(`SSH_AUTH_SOCK=${where}`);
      if (socket !== undefined) out.mounts.push({ type: 'bind', source: socket, target: where, readonly: false });
    } else {
      throw new TsbuildError('NOT_SUPPORTED', `RUN --mount=type=${m.type},from=… is not supported yet`);
    }
  }
  return out;
}

/** `path` inside a plain rootfs copy, symlinks followed in scope; it must exist. */
async function pathInCopy(root: string, path: string, from: string): Promise<string> {
  const resolved = await resolveLayeredPath([root], path);
  const host = join(root, resolved);
  if (!existsSync(host)) throw new TsbuildError('MOUNT_FROM', `RUN --mount from=${from}: ${path} not found in that image`);
  return host;
}

/** A cache dir's first contents: `source` of the image, moved out of a throwaway copy. */
async function seedCache(dir: string, layers: string[], source: string, scratch: string): Promise<void> {
  const copy = await prepareCopySnapshot(layers, { tmpDir: scratch });
  try {
    const host = await pathInCopy(copy.dir, source, 'image');
    if (!statSync(host).isDirectory()) throw new TsbuildError('MOUNT_FROM', `RUN --mount=type=cache,from=…: ${source} is not a directory`);
    await mkdir(dirname(dir), { recursive: true });
    await rename(host, dir);
  } finally {
    await copy.dispose();
  }
}

export async function runStep(req: RunStepRequest, deps: RunStepDeps): Promise<void> {
  const lowers = req.rootfs.lowerDirs;
  const user = resolveUser(req.user, await readImageText(lowers, '/etc/passwd'), await readImageText(lowers, '/etc/group'));
  const scratch = await mkdtemp(join(deps.tmpDir, 'run-'));
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const initDir = join(scratch, 'init');
    await createInitLayer(initDir, { lowerDirs: lowers });
    // Secrets live on a tmpfs outside the store while the RUN needs them.
    // On tmpfs, in a dir named after this process: swept by the next tsbuild if we are killed.
    const secretDir = await mkdtemp(join(await processTmpDir('shm'), 'secrets-'));
    cleanups.push(() => rm(secretDir, { recursive: true, force: true }));
    const prepared = await mountsFor(req.instruction.mounts, deps, secretDir, { sources: req.mountSources ?? {}, scratch, cleanups });
    const extraMounts = prepared.mounts;
    if (req.instruction.script) {
      // A heredoc with a shebang runs as a file, bound read-only where BuildKit puts it.
      const file = join(scratch, 'script');
      await writeFile(file, req.instruction.script.content, { mode: 0o755 });
      extraMounts.push({ type: 'bind', source: file, target: req.instruction.script.path, readonly: true });
    }
    const result = await deps.sandbox.run(
      {
        rootfs: req.rootfs,
        initDir,
        args: req.args,
        env: dockerRunEnv([...req.env, ...prepared.env], { hostname: req.hostname, home: user.home }),
        cwd: req.cwd,
        user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
        hostname: req.hostname,
        network: req.network,
        extraMounts,
        onStdout: (c) => req.onOutput(c, 'stdout'),
        onStderr: (c) => req.onOutput(c, 'stderr'),
      },
      req.signal,
    );
    if (result.exitCode !== 0) throw new StepFailedError(req.args.join(' '), result.exitCode, result.stderrTail);
  } finally {
    for (const c of cleanups) await c();
    await rm(scratch, { recursive: true, force: true });
  }
}
