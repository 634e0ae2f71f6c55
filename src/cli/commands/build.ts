import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { TsbuildError } from '../../errors.js';
import { StepFailedError, type BuildEvents } from '../../exec/build.js';
import { runBuild } from '../../exec/run-build.js';
import type { SecretSource } from '../../exec/run-step.js';
import { familiarString, parseReference, withDefaultTag } from '../../image/reference.js';
import { extractArchive, decompressed } from '../../store/archive.js';
import { processTmpDir } from '../../store/process-tmp.js';
import { processScratchPath } from '../../store/store.js';
import { collect, parseBuildArgs } from '../build-args.js';
import { plainProgress, quietProgress, ttyProgress } from '../progress.js';
import { defaultRoot } from '../root.js';
import { parseCacheFrom, parseCacheTo, parseOutput, type OutputSpec } from '../../exec/build-specs.js';

interface BuildFlags {
  tag: string[];
  file?: string;
  buildArg: string[];
  target?: string;
  cache: boolean;
  root: string;
  progress: string;
  quiet?: boolean;
  network: string;
  label: string[];
  historyStyle: string;
  tarsumModes: string;
  sourceDateEpoch?: string;
  reproducible?: boolean;
  secret: string[];
  ssh: string[];
  pull?: boolean;
  push?: boolean;
  insecureRegistry: string[];
  runtime?: string;
  cacheTo: string[];
  cacheFrom: string[];
  output: string[];
}

/** `--secret id=x,src=FILE` | `id=x,env=VAR` | `id=x` (the variable x). */
export function parseSecrets(values: string[]): Record<string, SecretSource> {
  const out: Record<string, SecretSource> = {};
  for (const v of values) {
    const fields = Object.fromEntries(v.split(',').map((f) => [f.slice(0, f.indexOf('=') < 0 ? f.length : f.indexOf('=')), f.includes('=') ? f.slice(f.indexOf('=') + 1) : '']));
    const id = fields['id'];
    if (!id) throw new TsbuildError('USAGE', `--secret ${v}: an id= is required`);
    const src = fields['src'] ?? fields['source'];
    if (src !== undefined) out[id] = { src };
    else out[id] = { env: fields['env'] ?? id };
  }
  return out;
}

/** `--ssh default` (the agent at $SSH_AUTH_SOCK) or `--ssh id=/path/to/socket`. */
export function parseSsh(values: string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const id = eq < 0 ? v : v.slice(0, eq);
    const socket = eq < 0 ? env['SSH_AUTH_SOCK'] : v.slice(eq + 1);
    if (!socket) throw new TsbuildError('USAGE', `--ssh ${v}: no socket given and SSH_AUTH_SOCK is not set`);
    out[id] = socket;
  }
  return out;
}

/** SOURCE_DATE_EPOCH from the flag, else a build arg, else the environment; undefined when none. */
export function sourceDateEpochOf(flag: string | undefined, buildArgs: Record<string, string | undefined>, env: NodeJS.ProcessEnv): number | undefined {
  const raw = flag ?? buildArgs['SOURCE_DATE_EPOCH'] ?? env['SOURCE_DATE_EPOCH'];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw new TsbuildError('USAGE', `SOURCE_DATE_EPOCH must be a whole number of seconds, not ${JSON.stringify(raw)}`);
  return Number(raw);
}

function labelsOf(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    out[eq < 0 ? v : v.slice(0, eq)] = eq < 0 ? '' : v.slice(eq + 1);
  }
  return out;
}

async function events(flags: BuildFlags, stdoutTaken = false): Promise<BuildEvents> {
  // With `--output dest=-` the image goes to stdout, so progress goes to stderr.
  const out = (s: string) => void (stdoutTaken ? process.stderr : process.stdout).write(s);
  const err = (s: string) => void process.stderr.write(s);
  const mode = flags.quiet ? 'quiet' : flags.progress === 'auto' ? (process.stdout.isTTY ? 'tty' : 'plain') : flags.progress;
  if (mode === 'quiet') return quietProgress(out, err);
  if (mode === 'tty') return ttyProgress(stdoutTaken ? process.stderr : process.stdout, err);
  if (mode === 'plain') return plainProgress(out, err);
  throw new TsbuildError('USAGE', `--progress must be auto, tty, plain or quiet, not ${flags.progress}`);
}

export function register(cli: Command): void {
  cli
    .command('build [context]', { isDefault: true })
    .description('build an image from a Dockerfile (the default command)')
    .option('-t, --tag <name:tag>', 'name and optionally a tag (repeatable)', collect, [] as string[])
    .option('-f, --file <path>', "the Dockerfile (default: <context>/Dockerfile; - for stdin)")
    .option('--build-arg <K[=V]>', 'set a build-time variable (repeatable)', collect, [] as string[])
    .option('--target <stage>', 'build up to this stage')
    .option('--no-cache', 'do not use the build cache')
    .option('--root <dir>', 'store root (a dockerd data root)', defaultRoot())
    .option('--progress <mode>', 'auto, tty, plain or quiet', 'auto')
    .option('-q, --quiet', 'print only the image ID')
    .option('--network <mode>', 'network for RUN: default, host or none', 'default')
    .option('--runtime <name>', 'run RUN steps with an OCI runtime: runc or crun (default: the built-in namespace sandbox)')
    .option('--label <K=V>', 'add a label to the image (repeatable)', collect, [] as string[])
    .option('--history-style <style>', 'created_by text: classic or buildkit', 'classic')
    .option('--tarsum-modes <style>', 'COPY hashes as the client sends modes: perm (current clients) or typed (docker 20.10 CLI)', 'perm')
    .option('--source-date-epoch <seconds>', 'reproducible build: created times and new file mtimes clamped to this (also SOURCE_DATE_EPOCH)')
    .option('--reproducible', 'reproducible build with the newest mtime in the context as the epoch')
    .option('--secret <id=…,src=FILE|env=VAR>', 'a secret for RUN --mount=type=secret (repeatable)', collect, [] as string[])
    .option('--ssh <id[=SOCKET]>', 'an ssh agent for RUN --mount=type=ssh (repeatable; default: $SSH_AUTH_SOCK)', collect, [] as string[])
    .option('--pull', 'always pull newer versions of the base images')
    .option('--push', 'push every tag after the build')
    .option('--insecure-registry <host>', 'allow plain HTTP to this registry (repeatable)', collect, [] as string[])
    .option('--cache-to <type=registry,ref=R[,mode=min|max]>', 'push the build cache to a registry (repeatable)', collect, [] as string[])
    .option('--cache-from <type=registry,ref=R>', 'use a build cache from a registry (repeatable)', collect, [] as string[])
    .option('-o, --output <type=oci|docker,dest=PATH|->', 'also write the image as an OCI layout (tar, or a directory) or a docker-save tar (repeatable)', collect, [] as string[])
    .action(async (context: string | undefined, flags: BuildFlags) => {
      if (context === undefined) throw new TsbuildError('USAGE', '"tsbuild build" requires exactly 1 argument: the build context (e.g. ".")');
      if (!['default', 'host', 'none'].includes(flags.network)) throw new TsbuildError('USAGE', `--network must be default, host or none, not ${flags.network}`);
      if (flags.runtime !== undefined && flags.runtime !== 'runc' && flags.runtime !== 'crun') throw new TsbuildError('USAGE', `--runtime must be runc or crun, not ${flags.runtime}`);
      if (flags.historyStyle !== 'classic' && flags.historyStyle !== 'buildkit') throw new TsbuildError('USAGE', `--history-style must be classic or buildkit`);
      if (flags.tarsumModes !== 'perm' && flags.tarsumModes !== 'typed') throw new TsbuildError('USAGE', `--tarsum-modes must be perm or typed`);
      const tags = flags.tag.map((t) => familiarString(withDefaultTag(parseReference(t))));
      const cacheTo = flags.cacheTo.map(parseCacheTo);
      const cacheFrom = flags.cacheFrom.map(parseCacheFrom);
      const outputs: OutputSpec[] = flags.output.map(parseOutput);
      if (outputs.filter((o) => o.dest === '-').length > 1) throw new TsbuildError('USAGE', 'only one --output can go to stdout (dest=-)');
      const reporter = await events(flags, outputs.some((o) => o.dest === '-'));
      let contextDir = context;
      let scratch: string | undefined;
      try {
        if (context === '-') {
          // A tar on stdin is the context, as with `docker build -`.
          // A dir the store's crash sweep recognises (or /tmp/tsbuild-<owner>/ctx-…), so a kill -9 leaves nothing behind.
          const inStore = processScratchPath(flags.root);
          scratch = await mkdir(inStore, { recursive: true, mode: 0o700 }).then(() => inStore, async () => mkdtemp(join(await processTmpDir('disk'), 'ctx-')));
          await extractArchive(await decompressed(process.stdin), scratch);
          contextDir = scratch;
        }
        const dockerfileText = flags.file === '-' ? readFileSync(0, 'utf8') : undefined;
        const buildArgs = parseBuildArgs(flags.buildArg, process.env);
        const epoch = sourceDateEpochOf(flags.sourceDateEpoch, buildArgs, process.env);
        await runBuild({
          root: flags.root,
          contextDir,
          ...(flags.file !== undefined && flags.file !== '-' ? { dockerfile: flags.file } : {}),
          ...(dockerfileText !== undefined ? { dockerfileText } : {}),
          tags,
          buildArgs,
          ...(flags.target !== undefined ? { target: flags.target } : {}),
          ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
          ...(flags.reproducible ? { reproducible: true } : {}),
          secrets: parseSecrets(flags.secret),
          ssh: parseSsh(flags.ssh, process.env),
          ...(flags.pull ? { pull: true } : {}),
          ...(flags.push ? { push: true } : {}),
          insecureRegistries: flags.insecureRegistry,
          noCache: !flags.cache,
          network: flags.network as 'default' | 'host' | 'none',
          ...(flags.runtime !== undefined ? { runtime: flags.runtime as 'runc' | 'crun' } : {}),
          labels: labelsOf(flags.label),
          historyStyle: flags.historyStyle,
          modeStyle: flags.tarsumModes,
          events: reporter,
          cacheTo,
          cacheFrom,
          outputs,
        });
      } catch (e) {
        reporter.failed?.();
        if (e instanceof StepFailedError && e.stderrTail.trim() !== '') process.stderr.write(`--- last lines of output ---\n${e.stderrTail.replace(/\n?$/, '\n')}`);
        throw e;
      } finally {
        if (scratch) await rm(scratch, { recursive: true, force: true });
      }
    });
}
