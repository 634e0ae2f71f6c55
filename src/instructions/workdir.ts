import { posix } from 'node:path';
import type { InstructionNode } from '../dockerfile/node.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { exactlyOne, flagsOf, requireArgs, type ParseContext } from './common.js';
import type { WorkdirInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): WorkdirInstruction {
  flagsOf(node, ctx);
  requireArgs(node, ctx, exactlyOne('WORKDIR'));
  return { kind: 'WORKDIR', path: node.args };
}

/** Docker keeps an absolute WORKDIR as written; a relative one is joined to the current one and cleaned. */
export function resolveWorkdir(current: string, requested: string): string {
  return posix.isAbsolute(requested) ? requested : posix.join('/', current || '/', requested).replace(/(.)\/$/, '$1');
}

export function plan(instr: WorkdirInstruction, ctx: StepContext): StepOutcome {
  const requested = ctx.expand(instr.path);
  if (requested === '') ctx.fail('cannot normalize nothing');
  const path = resolveWorkdir(ctx.state.config.WorkingDir, requested);
  ctx.state.config.WorkingDir = path;
  return { type: 'workdir', instruction: { ...instr, path }, text: `WORKDIR ${path}` };
}
