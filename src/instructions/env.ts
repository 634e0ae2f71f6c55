import type { InstructionNode } from '../dockerfile/node.js';
import { FormError, parseNameValue } from '../dockerfile/forms.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { atLeastOne, fail, flagsOf, wordOffset, type ParseContext } from './common.js';
import type { EnvInstruction, KeyValue } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): EnvInstruction {
  flagsOf(node, ctx);
  try {
    const { pairs, legacy } = parseNameValue(node.args, 'ENV', node.escape);
    if (pairs.length === 0) fail(node, ctx, atLeastOne('ENV'));
    if (pairs.some((p) => p.key === '')) fail(node, ctx, 'ENV names can not be blank', node.argsOffset);
    return { kind: 'ENV', env: pairs, legacy };
  } catch (e) {
    if (e instanceof FormError) fail(node, ctx, e.message, e.word === undefined ? 0 : wordOffset(node, e.word));
    throw e;
  }
}

/** Sets NAME=value in a Docker Env list, replacing an earlier NAME. */
export function setEnv(env: string[] | null, key: string, value: string): string[] {
  const list = env ? [...env] : [];
  const at = list.findIndex((e) => e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')) === key);
  if (at >= 0) list[at] = `${key}=${value}`;
  else list.push(`${key}=${value}`);
  return list;
}

export function plan(instr: EnvInstruction, ctx: StepContext): StepOutcome {
  // Every pair expands against the environment from before this instruction.
  const env: KeyValue[] = instr.env.map((p) => ({ key: ctx.expand(p.key), value: ctx.expand(p.value) }));
  for (const p of env) {
    if (p.key === '') ctx.fail('ENV names can not be blank');
    ctx.state.config.Env = setEnv(ctx.state.config.Env, p.key, p.value);
  }
  if (instr.legacy) ctx.warn('"ENV key value" should be used as "ENV key=value" (LegacyKeyValueFormat)');
  return { type: 'metadata', instruction: { ...instr, env }, text: 'ENV ' + env.map((p) => `${p.key}=${p.value}`).join(' ') };
}
