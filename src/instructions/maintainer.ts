import type { InstructionNode } from '../dockerfile/node.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { exactlyOne, flagsOf, requireArgs, type ParseContext } from './common.js';
import type { MaintainerInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): MaintainerInstruction {
  flagsOf(node, ctx);
  requireArgs(node, ctx, exactlyOne('MAINTAINER'));
  return { kind: 'MAINTAINER', name: node.args };
}

export function plan(instr: MaintainerInstruction, ctx: StepContext): StepOutcome {
  ctx.state.author = instr.name;
  ctx.warn('MAINTAINER instruction is deprecated in favor of using label (MaintainerDeprecated)');
  return { type: 'metadata', instruction: instr, text: `MAINTAINER ${instr.name}` };
}
