/** The keyword table: each instruction's parse and plan, one file each. */
import type { InstructionNode } from '../dockerfile/node.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { fail, type ParseContext } from './common.js';
import type { Instruction } from './types.js';
import * as add from './add.js';
import * as arg from './arg.js';
import * as cmd from './cmd.js';
import * as copy from './copy.js';
import * as entrypoint from './entrypoint.js';
import * as env from './env.js';
import * as expose from './expose.js';
import * as from from './from.js';
import * as healthcheck from './healthcheck.js';
import * as label from './label.js';
import * as maintainer from './maintainer.js';
import * as onbuild from './onbuild.js';
import * as run from './run.js';
import * as shell from './shell.js';
import * as stopsignal from './stopsignal.js';
import * as user from './user.js';
import * as volume from './volume.js';
import * as workdir from './workdir.js';

interface InstructionModule {
  parse(node: InstructionNode, ctx: ParseContext): Instruction;
  plan?(instr: never, ctx: StepContext): StepOutcome;
}

const MODULES: Record<string, InstructionModule> = {
  ADD: add, ARG: arg, CMD: cmd, COPY: copy, ENTRYPOINT: entrypoint, ENV: env, EXPOSE: expose, FROM: from,
  HEALTHCHECK: healthcheck, LABEL: label, MAINTAINER: maintainer, ONBUILD: onbuild, RUN: run, SHELL: shell,
  STOPSIGNAL: stopsignal, USER: user, VOLUME: volume, WORKDIR: workdir,
};

export const KEYWORDS = Object.keys(MODULES);

/** Levenshtein distance, for "did you mean" on a misspelt keyword. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

export function suggestKeyword(word: string): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of KEYWORDS) {
    const d = editDistance(word.toUpperCase(), k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

export function parseInstruction(node: InstructionNode, ctx: ParseContext): Instruction {
  const mod = MODULES[node.keyword];
  if (!mod) {
    const word = /^\S*/.exec(node.original)![0];
    const hint = suggestKeyword(word);
    fail(node, ctx, `unknown instruction: ${word}${hint ? ` (did you mean ${hint.toLowerCase() === word ? hint.toLowerCase() : hint}?)` : ''}`);
  }
  return mod.parse(node, ctx);
}

export function planInstruction(instr: Instruction, ctx: StepContext): StepOutcome {
  const mod = MODULES[instr.kind];
  if (!mod?.plan) throw new Error(`no planner for ${instr.kind}`);
  return mod.plan(instr as never, ctx);
}
