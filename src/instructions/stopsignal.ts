import type { InstructionNode } from '../dockerfile/node.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { exactlyOne, flagsOf, requireArgs, type ParseContext } from './common.js';
import type { StopsignalInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): StopsignalInstruction {
  flagsOf(node, ctx);
  requireArgs(node, ctx, exactlyOne('STOPSIGNAL'));
  return { kind: 'STOPSIGNAL', signal: node.args };
}

const SIGNALS = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR',
  'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'UNUSED', 'URG', 'USR1', 'USR2', 'VTALRM',
  'WINCH', 'XCPU', 'XFSZ', 'RTMIN', 'RTMAX',
]);

/** Docker's signal.ParseSignal on Linux: a non-zero number, or a name with or without SIG. */
export function isValidSignal(raw: string): boolean {
  if (/^\d+$/.test(raw)) return Number(raw) !== 0;
  const name = raw.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.has(name)) return true;
  const rt = /^RTMIN\+(\d+)$/.exec(name) ?? /^RTMAX-(\d+)$/.exec(name);
  return rt !== null && Number(rt[1]) >= 1 && Number(rt[1]) <= 15;
}

export function plan(instr: StopsignalInstruction, ctx: StepContext): StepOutcome {
  const signal = ctx.expand(instr.signal);
  if (!isValidSignal(signal)) ctx.fail(`Invalid signal: ${signal}`);
  ctx.state.config.StopSignal = signal;
  return { type: 'metadata', instruction: { ...instr, signal }, text: `STOPSIGNAL ${signal}` };
}
