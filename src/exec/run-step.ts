/** RUN through the namespace sandbox: user resolution, Docker's environment, the init layer, mounts. */
import { existsSync } from 'node:fs';
import { chown, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TsbuildError } from '../errors.js';
import type { RunMount } from '../instructions/types.js';
import { dockerRunEnv } from '../sandbox/env.js';
import type { ExtraMount, Sandbox } from '../sandbox/types.js';
import { resolveUser } from '../sandbox/users.js';
import { createInitLayer } from '../snapshot/overlay.js';
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
async function mountsFor(mounts: RunMount[], deps: RunStepDeps, secretDir: string): Promise<PreparedMounts> {
  const out: PreparedMounts = { mounts: [], env: [] };
  for (const [i, m] of mounts.entries()) {
    const target = m.options['target'];
    const readonly = m.options['readonly'] === 'true';
    if (m.type === 'tmpfs') {
      out.mounts.push({ type: 'tmpfs', target: target!, ...(m.options['size'] ? { options: [`size=${m.options['size']}`] } : {}) });
    } else if (m.type === 'cache') {
      const id = (m.options['id'] ?? target!).replace(/[^A-Za-z0-9_.-]/g, '_');
      const dir = join(deps.cacheDir, id);
      await mkdir(dir, { recursive: true, mode: m.options['mode'] ? parseInt(m.options['mode'], 8) : 0o755 });
      out.mounts.push({ type: 'bind', source: dir, target: target!, readonly });
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
      if (socket === undefined) {
        if (m.options['required'] === 'false') continue;
        throw new TsbuildError('SSH', `ssh agent ${id}: not provided (pass --ssh ${id}[=SOCKET])`);
      }
      const where = target ?? `/run/buildkit/ssh_agent.${i}`;
      out.mounts.push({ type: 'bind', source: socket, target: where, readonly: false });
      out.env.push(`SSH_AUTH_SOCK=${where}`);
    } else {
      throw new TsbuildError('NOT_SUPPORTED', `RUN --mount=type=${m.type},from=… is not supported yet`);
    }
  }
  return out;
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
    const secretDir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tsbuild-secrets-'));
    cleanups.push(() => rm(secretDir, { recursive: true, force: true }));
    const prepared = await mountsFor(req.instruction.mounts, deps, secretDir);
    const extraMounts = prepared.mounts;
    if (req.instruction.script) {
      // A heredoc with a shebang runs as a file, bound read-only where BuildKit puts it.
      const file = join(scratch, 'script');
      await writeFile(file, req.instruction.script.content, { mode: 0o755 });
      extraMounts.push({ type: 'bind', source: file, target: req.instruction.script.path, readonly: true });
    }
    const result = await deps.sandbox.run({
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
    });
    if (result.exitCode !== 0) throw new StepFailedError(req.args.join(' '), result.exitCode, result.stderrTail);
  } finally {
    for (const c of cleanups) await c();
    await rm(scratch, { recursive: true, force: true });
  }
}
