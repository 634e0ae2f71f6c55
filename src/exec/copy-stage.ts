/**
 * COPY/ADD sources that are not files of the context — heredoc bodies
 * (`COPY <<EOF /dst`), ADD URLs and ADD git repositories — are written into a
 * staging dir first; the copy then reads them like context files, hashes included.
 *
 * As in BuildKit, a downloaded archive is kept as a file unless `--unpack=true`.
 *
 * Git sources (`ADD https://host/repo.git#ref:subdir /dst`, `git@host:repo.git`,
 * `git://…`, `ssh://…`) are fetched with the `git` CLI: a shallow fetch of the
 * ref (HEAD when none), falling back to a full fetch when the server refuses it
 * (a commit that is not a branch or tag tip), then a detached checkout and its
 * submodules. `.git` is dropped unless `--keep-git-dir`. Like BuildKit's git
 * source the tree is normalized: directories 0755, files 0644 or 0755 (any x
 * bit), owner 0:0, every mtime SOURCE_DATE_EPOCH (0 when unset). The repository
 * (or its subdir) is a directory source: its contents go into the destination.
 */
import { installExtraCaCerts } from '../sys/extra-ca.js';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, utimes, writeFile, chmod, lchown, lstat, lutimes, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TsbuildError } from '../errors.js';
import type { CopyInstruction } from '../instructions/types.js';

export interface StagedSources {
  contextDir: string;
  instruction: CopyInstruction;
  dispose(): Promise<void>;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

export function needsStaging(instr: CopyInstruction): boolean {
  return instr.heredocs.length > 0 || (instr.kind === 'ADD' && instr.sources.some((s) => isUrl(s) || isGitSource(s)));
}

/**
 * A git remote as ADD takes one (BuildKit's rules): git@…:…, git://, ssh://, or http(s)
 * ending in `.git`; also file:// ending in `.git` (a local repository).
 */
export function isGitSource(s: string): boolean {
  if (/^git@[^:/]+:/.test(s) || /^(git|ssh):\/\//i.test(s)) return true;
  if (!isUrl(s) && !/^file:\/\//i.test(s)) return false;
  const path = s.replace(/#.*$/, '').replace(/\?.*$/, '');
  return /\.git\/?$/.test(path);
}

export interface GitRef {
  remote: string;
  /** Branch, tag or commit; undefined: the remote's HEAD. */
  ref?: string;
  /** A directory of the repository to add instead of its root. */
  subdir?: string;
}

/** `remote#ref:subdir` split into its parts. */
export function parseGitRef(s: string): GitRef {
  const i = s.indexOf('#');
  if (i < 0) return { remote: s };
  const out: GitRef = { remote: s.slice(0, i) };
  const frag = s.slice(i + 1);
  const j = frag.indexOf(':');
  const ref = j < 0 ? frag : frag.slice(0, j);
  const subdir = j < 0 ? '' : frag.slice(j + 1).replace(/^\/+|\/+$/g, '');
  if (ref !== '') out.ref = ref;
  if (subdir !== '' && subdir !== '.') {
    if (subdir.split('/').includes('..')) throw new TsbuildError('ADD_GIT', `invalid subdir in git source: ${s}`);
    out.subdir = subdir;
  }
  return out;
}

/** Over ssh, the agent of `--ssh default` (else the caller's); other transports get none and never prompt. */
function gitEnv(remote: string, sshAuthSock: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', LC_ALL: 'C' };
  if (/^git@[^:/]+:/.test(remote) || /^ssh:\/\//i.test(remote)) {
    if (sshAuthSock !== undefined) env['SSH_AUTH_SOCK'] = sshAuthSock;
    env['GIT_SSH_COMMAND'] ??= 'ssh -o BatchMode=yes';
  } else {
    delete env['SSH_AUTH_SOCK'];
  }
  return env;
}

function runGit(args: string[], cwd: string, env: NodeJS.ProcessEnv = gitEnv('', undefined)): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['-c', 'advice.detachedHead=false', '-c', 'init.defaultBranch=main', ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new TsbuildError('ADD_GIT', e.code === 'ENOENT' ? 'git not found: install git to ADD git sources' : `cannot run git: ${e.message}`, { cause: e })),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new TsbuildError('ADD_GIT', `git ${args.join(' ')} failed (exit ${code}): ${Buffer.concat(err).toString('utf8').trim()}`));
    });
  });
}

/** Every path of a checkout normalized: modes, owner 0:0, mtime `t`. Directories last (deepest first). */
async function normalizeTree(dir: string, t: number): Promise<void> {
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    const st = await lstat(p);
    await lchown(p, 0, 0);
    if (st.isDirectory()) {
      await normalizeTree(p, t);
      await chmod(p, 0o755);
      await utimes(p, t, t);
    } else if (st.isSymbolicLink()) {
      await lutimes(p, t, t);
    } else {
      await chmod(p, (st.mode & 0o111) !== 0 ? 0o755 : 0o644);
      await utimes(p, t, t);
    }
  }
}

/** Clone `src` into `dir` (which must not exist yet) at its ref. */
export async function cloneGit(src: string, dir: string, opts: { keepGitDir?: boolean; epoch?: number; sshAuthSock?: string } = {}): Promise<GitRef> {
  const ref = parseGitRef(src);
  const env = gitEnv(ref.remote, opts.sshAuthSock);
  await runGit(['init', '-q', dir], '/');
  await runGit(['remote', 'add', 'origin', ref.remote], dir);
  const want = ref.ref ?? 'HEAD';
  let commit: string;
  try {
    await runGit(['fetch', '-q', '--depth=1', '--no-tags', 'origin', want], dir, env);
    commit = 'FETCH_HEAD';
  } catch (shallowError) {
    // The server will not hand out that object by itself (e.g. a commit that is no tip, or a
    // dumb HTTP server, which cannot do shallow fetches): fetch all.
    try {
      await runGit(['fetch', '-q', '--tags', 'origin', '+refs/heads/*:refs/remotes/origin/*'], dir, env);
    } catch {
      throw shallowError;
    }
    commit = '';
    for (const c of [`${want}^{commit}`, `origin/${want}^{commit}`]) {
      try {
        commit = (await runGit(['rev-parse', '--verify', '-q', c], dir)).trim();
        break;
      } catch {
        /* next */
      }
    }
    if (commit === '') throw new TsbuildError('ADD_GIT', `git source ${src}: ref ${want} not found`);
  }
  await runGit(['checkout', '-q', '--detach', commit], dir);
  try {
    await lstat(join(dir, '.gitmodules'));
    await runGit(['-c', 'protocol.file.allow=always', 'submodule', 'update', '-q', '--init', '--recursive', '--depth=1'], dir, gitEnv('ssh://submodules', opts.sshAuthSock));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (opts.keepGitDir !== true) await rm(join(dir, '.git'), { recursive: true, force: true });
  await normalizeTree(dir, opts.epoch ?? 0);
  await chmod(dir, 0o755);
  await utimes(dir, opts.epoch ?? 0, opts.epoch ?? 0);
  return ref;
}

/** The file name ADD gives a download: the URL's last path segment. */
export function urlFileName(url: string): string {
  const name = basename(new URL(url).pathname);
  if (name === '' || name === '/') throw new TsbuildError('ADD_URL', `cannot determine a filename from url: ${url}`);
  return decodeURIComponent(name);
}

async function download(url: string, file: string, checksum: string | undefined, fetchImpl: typeof fetch): Promise<void> {
  let res: Response;
  try {
    await installExtraCaCerts();
    res = await fetchImpl(url, { redirect: 'follow' });
  } catch (e) {
    throw new TsbuildError('ADD_URL', `failed to fetch ${url}: ${(e as Error).message}`, { cause: e });
  }
  if (!res.ok || !res.body) throw new TsbuildError('ADD_URL', `failed to fetch ${url}: ${res.status} ${res.statusText}`);
  const hash = createHash(checksum?.split(':')[0] ?? 'sha256');
  const tmp = `${file}.part`;
  await pipeline(
    Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
    async function* (source) {
      for await (const chunk of source) {
        hash.update(chunk as Buffer);
        yield chunk;
      }
    },
    createWriteStream(tmp, { mode: 0o600 }),
  );
  // --checksum is verified before the file can reach any layer.
  if (checksum !== undefined && `${checksum.split(':')[0]}:${hash.digest('hex')}` !== checksum) {
    await rm(tmp, { force: true });
    throw new TsbuildError('CHECKSUM', `digest mismatch for ${url}: expected ${checksum}`);
  }
  const { rename } = await import('node:fs/promises');
  await rename(tmp, file);
  await chmod(file, 0o600);
  const lastModified = res.headers.get('last-modified');
  const mtime = lastModified ? Date.parse(lastModified) / 1000 : NaN;
  if (!Number.isNaN(mtime)) await utimes(file, mtime, mtime);
}

export async function stageSources(instr: CopyInstruction, scratch: string, opts: { epoch?: number; fetchImpl?: typeof fetch; sshAuthSock?: string } = {}): Promise<StagedSources> {
  const dir = await mkdtemp(join(scratch, 'sources-'));
  try {
    const heredocs = new Map(instr.heredocs.map((h) => [h.name, h]));
    const sources: string[] = [];
    let n = 0;
    for (const src of instr.sources) {
      const doc = heredocs.get(src);
      if (doc) {
        // Copied into a directory, a heredoc file is named after its delimiter, as in BuildKit.
        const name = doc.name;
        await writeFile(join(dir, name), doc.content);
        // BuildKit makes heredoc files 0664 (dockerfile2llb: llb.Mkfile(f, 0664, data)), umask aside.
        await chmod(join(dir, name), 0o664);
        const t = opts.epoch ?? 0;
        await utimes(join(dir, name), t, t);
        sources.push(name);
      } else if (instr.kind === 'ADD' && isGitSource(src)) {
        if (instr.checksum !== undefined) throw new TsbuildError('NOT_SUPPORTED', `ADD --checksum of a git source is not supported yet (${src})`);
        const name = `git-${n++}`;
        const ref = await cloneGit(src, join(dir, name), { keepGitDir: instr.keepGitDir === true, ...(opts.epoch !== undefined ? { epoch: opts.epoch } : {}), ...(opts.sshAuthSock !== undefined ? { sshAuthSock: opts.sshAuthSock } : {}) });
        sources.push(ref.subdir !== undefined ? `${name}/${ref.subdir}` : name);
      } else if (instr.kind === 'ADD' && isUrl(src)) {
        const name = urlFileName(src);
        await download(src, join(dir, name), instr.checksum, opts.fetchImpl ?? fetch);
        sources.push(name);
      } else {
        throw new TsbuildError('NOT_SUPPORTED', `${instr.kind} cannot mix context files with heredoc or URL sources yet (${src})`);
      }
    }
    // Downloads and heredocs are files, not archives to unpack, unless --unpack=true (BuildKit).
    const instruction: CopyInstruction = { ...instr, sources, heredocs: [], unpack: instr.unpack === true };
    delete instruction.checksum;
    return { contextDir: dir, instruction, dispose: () => rm(dir, { recursive: true, force: true }) };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
