import type { InstructionNode } from '../dockerfile/node.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import type { ParseContext } from './common.js';
import { parseCopy, planCopy } from './copy.js';
import type { CopyInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): CopyInstruction {
  return parseCopy(node, ctx, 'ADD');
}

export function plan(instr: CopyInstruction, ctx: StepContext): StepOutcome {
  return planCopy(instr, ctx);
}
