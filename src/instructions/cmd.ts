import type { InstructionNode } from '../dockerfile/node.js';
import { goQuoteSlice } from '../plan/gofmt.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { commandFormOf, commandLine, flagsOf, type ParseContext } from './common.js';
import type { CmdInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): CmdInstruction {
  flagsOf(node, ctx);
  return { kind: 'CMD', command: commandFormOf(node, ctx) };
}

export function plan(instr: CmdInstruction, ctx: StepContext): StepOutcome {
  const cmd = commandLine(instr.command, ctx.shell());
  // Observed on Docker 20.10: `CMD []` stores [] but does not count as setting CMD for ENTRYPOINT.
  ctx.state.config.Cmd = cmd;
  ctx.state.cmdSet = cmd.length > 0;
  return { type: 'metadata', instruction: instr, text: `CMD ${goQuoteSlice(cmd)}` };
}
