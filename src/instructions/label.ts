import type { InstructionNode } from '../dockerfile/node.js';
import { FormError, parseNameValue } from '../dockerfile/forms.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { atLeastOne, fail, flagsOf, wordOffset, type ParseContext } from './common.js';
import type { KeyValue, LabelInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): LabelInstruction {
  flagsOf(node, ctx);
  try {
    const { pairs } = parseNameValue(node.args, 'LABEL', node.escape);
    if (pairs.length === 0) fail(node, ctx, atLeastOne('LABEL'));
    if (pairs.some((p) => p.key === '')) fail(node, ctx, 'LABEL names can not be blank', node.argsOffset);
    return { kind: 'LABEL', labels: pairs };
  } catch (e) {
    if (e instanceof FormError) fail(node, ctx, e.message, e.word === undefined ? 0 : wordOffset(node, e.word));
    throw e;
  }
}

export function plan(instr: LabelInstruction, ctx: StepContext): StepOutcome {
  const labels: KeyValue[] = instr.labels.map((p) => ({ key: ctx.expand(p.key), value: ctx.expand(p.value) }));
  const merged = { ...(ctx.state.config.Labels ?? {}) };
  for (const l of labels) {
    if (l.key === '') ctx.fail('LABEL names can not be blank');
    merged[l.key] = l.value;
  }
  ctx.state.config.Labels = merged;
  return { type: 'metadata', instruction: { ...instr, labels }, text: 'LABEL ' + labels.map((l) => `${l.key}=${l.value}`).join(' ') };
}
