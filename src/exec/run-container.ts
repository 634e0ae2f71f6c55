/** `tsbuild run`: a throwaway container of an image (like `docker run --rm`), on the namespace sandbox. */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TsbuildError } from '../errors.js';
import { dockerRunEnv } from '../sandbox/env.js';
import { NamespaceSandbox } from '../sandbox/namespace.js';
import { resolveUser } from '../sandbox/users.js';
import { createInitLayer } from '../snapshot/overlay.js';
import type { ImageStore } from '../store/store.js';
import { readImageText } from './layer-files.js';

export interface RunContainerOptions {
  image: string;
  /** Replaces the image's CMD when non-empty. */
  command: string[];
  entrypoint?: string;
  env?: string[];
  user?: string;
  workdir?: string;
  network?: 'default' | 'host' | 'none';
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
}

export async function runContainer(store: ImageStore, opts: RunContainerOptions): Promise<number> {
  const image = await store.require(opts.image);
  const c = image.config.config;
  const entrypoint = opts.entrypoint !== undefined ? (opts.entrypoint === '' ? [] : [opts.entrypoint]) : (c.Entrypoint ?? []);
  const args = [...entrypoint, ...(opts.command.length > 0 ? opts.command : opts.entrypoint !== undefined ? [] : (c.Cmd ?? []))];
  if (args.length === 0) throw new TsbuildError('USAGE', 'no command specified: the image has no CMD or ENTRYPOINT');
  const lowerDirs = await store.lowerDirs(image);
  const user = resolveUser(opts.user ?? c.User, await readImageText(lowerDirs, '/etc/passwd'), await readImageText(lowerDirs, '/etc/group'));
  // Named after this process: swept if we are killed.
  const scratch = await store.processScratchDir();
  const tmp = scratch;
  try {
    const upperDir = join(scratch, 'upper');
    const workDir = join(scratch, 'work');
    const initDir = join(scratch, 'init');
    await mkdir(upperDir);
    await mkdir(workDir);
    await createInitLayer(initDir, { lowerDirs });
    const hostname = randomBytes(6).toString('hex');
    const result = await new NamespaceSandbox({ tmpDir: tmp }).run({
      rootfs: { lowerDirs, upperDir, workDir },
      initDir,
      args,
      env: dockerRunEnv([...(c.Env ?? []), ...(opts.env ?? [])], { hostname, home: user.home }),
      cwd: opts.workdir ?? (c.WorkingDir || '/'),
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      hostname,
      network: opts.network ?? 'default',
      onStdout: opts.onStdout,
      onStderr: opts.onStderr,
    });
    return result.exitCode;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
