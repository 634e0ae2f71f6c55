import type { InstructionNode } from '../dockerfile/node.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { exactlyOne, flagsOf, requireArgs, type ParseContext } from './common.js';
import type { UserInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): UserInstruction {
  flagsOf(node, ctx);
  requireArgs(node, ctx, exactlyOne('USER'));
  return { kind: 'USER', user: node.args };
}

export function plan(instr: UserInstruction, ctx: StepContext): StepOutcome {
  const user = ctx.expand(instr.user);
  ctx.state.config.User = user;
  return { type: 'metadata', instruction: { ...instr, user }, text: `USER ${user}` };
}
