/** RUN through the namespace sandbox: user resolution, Docker's environment, the init layer, mounts. */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TsbuildError } from '../errors.js';
import type { RunMount } from '../instructions/types.js';
import { dockerRunEnv } from '../sandbox/env.js';
import type { ExtraMount, Sandbox } from '../sandbox/types.js';
import { resolveUser } from '../sandbox/users.js';
import { createInitLayer } from '../snapshot/overlay.js';
import { StepFailedError, type RunStepRequest } from './build.js';
import { readImageText } from './layer-files.js';

export interface RunStepDeps {
  sandbox: Sandbox;
  /** Scratch space for init layers and heredoc scripts (inside the store root). */
  tmpDir: string;
  /** Persistent RUN --mount=type=cache directories. */
  cacheDir: string;
  contextDir: string;
}

async function mountsFor(mounts: RunMount[], deps: RunStepDeps): Promise<ExtraMount[]> {
  const out: ExtraMount[] = [];
  for (const m of mounts) {
    const target = m.options['target']!;
    const readonly = m.options['readonly'] === 'true';
    if (m.type === 'tmpfs') {
      out.push({ type: 'tmpfs', target, ...(m.options['size'] ? { options: [`size=${m.options['size']}`] } : {}) });
    } else if (m.type === 'cache') {
      const id = (m.options['id'] ?? target).replace(/[^A-Za-z0-9_.-]/g, '_');
      const dir = join(deps.cacheDir, id);
      await mkdir(dir, { recursive: true, mode: m.options['mode'] ? parseInt(m.options['mode'], 8) : 0o755 });
      out.push({ type: 'bind', source: dir, target, readonly });
    } else if (m.type === 'bind' && m.options['from'] === undefined) {
      // A bind from the context is read-only unless `rw`.
      out.push({ type: 'bind', source: join(deps.contextDir, m.options['source'] ?? '.'), target, readonly: m.options['readonly'] !== 'false' });
    } else {
      throw new TsbuildError('NOT_SUPPORTED', `RUN --mount=type=${m.type}${m.options['from'] ? ',from=…' : ''} is not supported yet`);
    }
  }
  return out;
}

export async function runStep(req: RunStepRequest, deps: RunStepDeps): Promise<void> {
  const lowers = req.rootfs.lowerDirs;
  const user = resolveUser(req.user, await readImageText(lowers, '/etc/passwd'), await readImageText(lowers, '/etc/group'));
  const scratch = await mkdtemp(join(deps.tmpDir, 'run-'));
  try {
    const initDir = join(scratch, 'init');
    await createInitLayer(initDir, { lowerDirs: lowers });
    const extraMounts = await mountsFor(req.instruction.mounts, deps);
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
      env: dockerRunEnv(req.env, { hostname: req.hostname, home: user.home }),
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
    await rm(scratch, { recursive: true, force: true });
  }
}
