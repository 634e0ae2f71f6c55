import type { InstructionNode } from '../dockerfile/node.js';
import { splitWhitespace } from '../dockerfile/forms.js';
import { goSlice } from '../plan/gofmt.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { atLeastOne, flagsOf, jsonArrayOf, requireArgs, wordOffset, type ParseContext } from './common.js';
import type { VolumeInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): VolumeInstruction {
  flagsOf(node, ctx);
  requireArgs(node, ctx, atLeastOne('VOLUME'));
  return { kind: 'VOLUME', volumes: jsonArrayOf(node, ctx) ?? splitWhitespace(node.args) };
}

export function plan(instr: VolumeInstruction, ctx: StepContext): StepOutcome {
  const volumes = instr.volumes.map((v) => ctx.expand(v));
  const map = { ...(ctx.state.config.Volumes ?? {}) };
  volumes.forEach((v, i) => {
    if (v.trim() === '') ctx.fail('VOLUME specified can not be an empty string', wordOffset(ctx.node, JSON.stringify(instr.volumes[i])));
    map[v] = {};
  });
  ctx.state.config.Volumes = map;
  return { type: 'metadata', instruction: { ...instr, volumes }, text: `VOLUME ${goSlice(volumes)}` };
}
