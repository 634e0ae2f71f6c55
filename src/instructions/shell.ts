import type { InstructionNode } from '../dockerfile/node.js';
import { goSlice } from '../plan/gofmt.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { atLeastOne, fail, flagsOf, jsonArrayOf, requireArgs, type ParseContext } from './common.js';
import type { ShellInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): ShellInstruction {
  flagsOf(node, ctx);
  requireArgs(node, ctx, atLeastOne('SHELL'));
  const shell = jsonArrayOf(node, ctx);
  if (!shell) fail(node, ctx, 'SHELL requires the arguments to be in JSON form');
  if (shell.length === 0) fail(node, ctx, atLeastOne('SHELL'));
  return { kind: 'SHELL', shell };
}

export function plan(instr: ShellInstruction, ctx: StepContext): StepOutcome {
  ctx.state.config.Shell = [...instr.shell];
  return { type: 'metadata', instruction: instr, text: `SHELL ${goSlice(instr.shell)}` };
}
