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
  // `ENTRYPOINT []` clears it: Docker stores null, not [].
  ctx.state.config.Entrypoint = entrypoint.length > 0 ? entrypoint : null;
  // A new entrypoint drops the CMD inherited from the base, unless this stage set one.
  if (!ctx.state.cmdSet) ctx.state.config.Cmd = null;
  return { type: 'metadata', instruction: instr, text: `ENTRYPOINT ${goQuoteSlice(entrypoint)}` };
}
