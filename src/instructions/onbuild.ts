import { toNode, type InstructionNode } from '../dockerfile/node.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { atLeastOne, fail, flagsOf, requireArgs, type ParseContext } from './common.js';
import { parseInstruction } from './index.js';
import type { OnbuildInstruction } from './types.js';

const FORBIDDEN_TRIGGERS = new Set(['FROM', 'MAINTAINER']);

export function parse(node: InstructionNode, ctx: ParseContext): OnbuildInstruction {
  flagsOf(node, ctx);
  requireArgs(node, ctx, atLeastOne('ONBUILD'));
  const expression = node.original.slice(node.afterKeywordOffset).trim();
  // The trigger is parsed as an instruction of its own so a bad one fails now, not in a later build.
  const trigger = toNode({ ...node.logical, text: expression, pieces: [{ offset: 0, line: node.range.start.line, column: node.range.start.column + node.afterKeywordOffset }] }, node.escape);
  if (trigger.keyword === 'ONBUILD') fail(node, ctx, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', node.afterKeywordOffset);
  if (FORBIDDEN_TRIGGERS.has(trigger.keyword)) fail(node, ctx, `${trigger.keyword} isn't allowed as an ONBUILD trigger`, node.afterKeywordOffset);
  return { kind: 'ONBUILD', expression, trigger: parseInstruction(trigger, ctx) };
}

export function plan(instr: OnbuildInstruction, ctx: StepContext): StepOutcome {
  ctx.state.config.OnBuild = [...(ctx.state.config.OnBuild ?? []), instr.expression];
  return { type: 'metadata', instruction: instr, text: `ONBUILD ${instr.expression}` };
}
