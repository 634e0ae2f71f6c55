import type { InstructionNode } from '../dockerfile/node.js';
import { goQuoteSlice } from '../plan/gofmt.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { commandFormOf, commandLine, flagsOf, type ParseContext } from './common.js';
import type { EntrypointInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): EntrypointInstruction {
  flagsOf(node, ctx);
  return { kind: 'ENTRYPOINT', command: commandFormOf(node, ctx) };
}

export function plan(instr: EntrypointInstruction, ctx: StepContext): StepOutcome {
  const entrypoint = commandLine(instr.command, ctx.shell());
  ctx.state.config.Entrypoint = entrypoint;
  // A new entrypoint drops the CMD inherited from the base, unless this stage set one.
  if (!ctx.state.cmdSet) ctx.state.config.Cmd = null;
  return { type: 'metadata', instruction: instr, text: `ENTRYPOINT ${goQuoteSlice(entrypoint ?? [])}` };
}
