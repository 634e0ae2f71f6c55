import type { InstructionNode } from '../dockerfile/node.js';
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
export function parseMount(spec: string, ctx: StepContext): RunMount {
  const options: Record<string, string> = {};
  let type: RunMount['type'] = 'bind';
  for (const field of splitMountFields(spec)) {
    if (field === '') continue;
    const eq = field.indexOf('=');
    const rawKey = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const key = KEY_ALIASES[rawKey] ?? rawKey;
    if (eq < 0 && !BOOL_KEYS.has(rawKey)) ctx.fail(`invalid field '${field}' must be a key=value pair`);
    if (!MOUNT_KEYS.has(key)) ctx.fail(`unexpected key '${rawKey}' in '${field}'`);
    const value = eq < 0 ? 'true' : ctx.expand(field.slice(eq + 1));
    if (key === 'type') {
      if (!MOUNT_TYPES.has(value)) ctx.fail(`unsupported mount type "${value}"`);
      type = value as RunMount['type'];
      continue;
    }
    if (key === 'readwrite') {
      options['readonly'] = value === 'true' ? 'false' : 'true';
      continue;
    }
    options[key] = value;
  }
  if (options['from'] !== undefined) ctx.referenceStage(options['from']);
  if (type === 'secret' && options['id'] === undefined && options['target'] === undefined && options['env'] === undefined) {
    ctx.fail('secret mount requires an id, a target or an env');
  }
  if (type === 'secret' && options['id'] === undefined && options['target'] !== undefined) options['id'] = options['target'].split('/').pop()!;
  if (type === 'secret' && options['target'] === undefined && options['env'] === undefined) options['target'] = `/run/secrets/${options['id']}`;
  if (type === 'ssh' && options['id'] === undefined) options['id'] = 'default';
  if ((type === 'bind' || type === 'cache' || type === 'tmpfs') && options['target'] === undefined) ctx.fail(`mount type ${type} requires a target`);
  if (type === 'cache' && options['sharing'] !== undefined && !['shared', 'private', 'locked'].includes(options['sharing'])) {
    ctx.fail(`unsupported sharing value "${options['sharing']}"`);
  }
  for (const k of ['uid', 'gid']) if (options[k] !== undefined && !/^\d+$/.test(options[k]!)) ctx.fail(`invalid ${k} value "${options[k]}"`);
  if (options['mode'] !== undefined && !/^[0-7]{1,4}$/.test(options['mode'])) ctx.fail(`invalid mode value "${options['mode']}"`);
  return { type, options };
}

/** The script a heredoc RUN hands to the shell: the line, then each body and its terminator. */
function heredocScript(instr: RunInstruction, line: string): string {
  let script = line;
  for (const h of instr.heredocs) script += '\n' + h.content + h.name;
  return script;
}

export function plan(instr: RunInstruction, ctx: StepContext): StepOutcome {
  const mounts = instr.mountSpecs.map((spec) => parseMount(spec, ctx));
  const planned: RunInstruction = { ...instr, mounts };
  const command = instr.command.form === 'shell' && instr.heredocs.length > 0 ? { form: 'shell' as const, command: heredocScript(instr, instr.command.command) } : instr.command;
  return { type: 'run', instruction: planned, cmd: commandLine(command, ctx.shell()) ?? [] };
}
