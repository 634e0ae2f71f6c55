import type { InstructionNode } from '../dockerfile/node.js';
import { parseHeredocMarker } from '../dockerfile/heredoc.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { commandFormOf, commandLine, flagsOf, requireArgs, atLeastOne, fail, type ParseContext } from './common.js';
import type { RunInstruction, RunMount } from './types.js';

export const flags = { mount: 'strings', network: 'string', security: 'string' } as const;

const NETWORKS = new Set(['default', 'none', 'host']);
const SECURITY = new Set(['sandbox', 'insecure']);

export function parse(node: InstructionNode, ctx: ParseContext): RunInstruction {
  const f = flagsOf(node, ctx, flags);
  requireArgs(node, ctx, atLeastOne('RUN'));
  const out: RunInstruction = { kind: 'RUN', command: commandFormOf(node, ctx), mountSpecs: f.lists.get('mount') ?? [], mounts: [], heredocs: node.heredocs };
  const network = f.strings.get('network');
  if (network !== undefined) {
    if (!NETWORKS.has(network)) fail(node, ctx, `unsupported network mode: ${network}`, f.offsets.get('network'));
    out.network = network as RunInstruction['network'] & string;
  }
  const security = f.strings.get('security');
  if (security !== undefined) {
    if (!SECURITY.has(security)) fail(node, ctx, `unsupported security mode: ${security}`, f.offsets.get('security'));
    out.security = security as RunInstruction['security'] & string;
  }
  return out;
}

/** Splits `a=b,c="d,e",ro` like Go's csv reader, one record. */
export function splitMountFields(spec: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < spec.length; i++) {
    const ch = spec[i]!;
    if (quoted) {
      if (ch === '"' && spec[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  fields.push(field);
  return fields;
}

const MOUNT_TYPES = new Set(['bind', 'cache', 'tmpfs', 'secret', 'ssh']);
const BOOL_KEYS = new Set(['ro', 'readonly', 'rw', 'readwrite', 'required']);
const KEY_ALIASES: Record<string, string> = { dst: 'target', destination: 'target', src: 'source', ro: 'readonly', rw: 'readwrite' };
const MOUNT_KEYS = new Set(['type', 'target', 'source', 'from', 'id', 'sharing', 'readonly', 'readwrite', 'uid', 'gid', 'mode', 'size', 'required', 'env', 'bind-propagation', 'bind-nonrecursive', 'tmpfs-size']);

/** Parses and expands one `--mount` spec, with BuildKit's defaults and checks. */
export function parseMount(spec: string, ctx: StepContext, offset: number): RunMount {
  const fail = (message: string): never => ctx.fail(message, offset);
  const options: Record<string, string> = {};
  let type: RunMount['type'] = 'bind';
  for (const field of splitMountFields(spec)) {
    if (field === '') continue;
    const eq = field.indexOf('=');
    const rawKey = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const key = KEY_ALIASES[rawKey] ?? rawKey;
    if (eq < 0 && !BOOL_KEYS.has(rawKey)) fail(`invalid field '${field}' must be a key=value pair`);
    if (!MOUNT_KEYS.has(key)) fail(`unexpected key '${rawKey}' in '${field}'`);
    const value = eq < 0 ? 'true' : ctx.expand(field.slice(eq + 1), offset);
    if (key === 'type') {
      if (!MOUNT_TYPES.has(value)) fail(`unsupported mount type "${value}"`);
      type = value as RunMount['type'];
      continue;
    }
    if (key === 'readwrite') {
      options['readonly'] = value === 'true' ? 'false' : 'true';
      continue;
    }
    options[key] = value;
  }
  if (options['from'] !== undefined) ctx.referenceStage(options['from'], offset);
  if (type === 'secret' && options['id'] === undefined && options['target'] === undefined && options['env'] === undefined) {
    fail('secret mount requires an id, a target or an env');
  }
  if (type === 'secret' && options['id'] === undefined && options['target'] !== undefined) options['id'] = options['target'].split('/').pop()!;
  if (type === 'secret' && options['target'] === undefined && options['env'] === undefined) options['target'] = `/run/secrets/${options['id']}`;
  if (type === 'ssh' && options['id'] === undefined) options['id'] = 'default';
  if ((type === 'bind' || type === 'cache' || type === 'tmpfs') && options['target'] === undefined) fail(`mount type ${type} requires a target`);
  if (type === 'cache' && options['sharing'] !== undefined && !['shared', 'private', 'locked'].includes(options['sharing'])) {
    fail(`unsupported sharing value "${options['sharing']}"`);
  }
  for (const k of ['uid', 'gid']) if (options[k] !== undefined && !/^\d+$/.test(options[k]!)) fail(`invalid ${k} value "${options[k]}"`);
  if (options['mode'] !== undefined && !/^[0-7]{1,4}$/.test(options['mode'])) fail(`invalid mode value "${options['mode']}"`);
  return { type, options };
}

/** Where a heredoc script with a shebang is mounted and run from, as in BuildKit. */
export const HEREDOC_SCRIPT_DIR = '/dev/pipes';

/**
 * BuildKit's heredoc RUN: a command that is nothing but one heredoc runs its body
 * as the script (through its shebang when it has one); otherwise the line plus
 * each body and terminator goes to the shell, which reads the heredocs itself.
 */
function heredocCommand(instr: RunInstruction, line: string, shell: string[]): { cmd: string[]; script?: RunInstruction['script'] } {
  const only = instr.heredocs.length === 1 ? parseHeredocMarker(line.trim(), '\\') : undefined;
  const doc = instr.heredocs[0];
  if (only && doc && only.name === doc.name) {
    if (doc.content.startsWith('#!')) {
      const path = `${HEREDOC_SCRIPT_DIR}/${doc.name}`;
      return { cmd: [path], script: { path, content: doc.content } };
    }
    return { cmd: [...shell, doc.content] };
  }
  let script = line;
  for (const h of instr.heredocs) script += '\n' + h.content + h.name;
  return { cmd: [...shell, script] };
}

export function plan(instr: RunInstruction, ctx: StepContext): StepOutcome {
  const mountFlags = ctx.node.flags.filter((f) => f.name === 'mount');
  const mounts = instr.mountSpecs.map((spec, i) => parseMount(spec, ctx, mountFlags[i]?.offset ?? ctx.node.argsOffset));
  const planned: RunInstruction = { ...instr, mounts };
  if (instr.command.form === 'shell' && instr.heredocs.length > 0) {
    const { cmd, script } = heredocCommand(instr, instr.command.command, ctx.shell());
    if (script) planned.script = script;
    return { type: 'run', instruction: planned, cmd };
  }
  return { type: 'run', instruction: planned, cmd: commandLine(instr.command, ctx.shell()) };
}
