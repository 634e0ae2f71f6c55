import type { InstructionNode } from '../dockerfile/node.js';
import { rawShellWords } from '../dockerfile/heredoc.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { atLeastOne, fail, flagsOf, requireArgs, type ParseContext } from './common.js';
import type { ArgDeclaration, ArgInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): ArgInstruction {
  flagsOf(node, ctx);
  requireArgs(node, ctx, atLeastOne('ARG'));
  const args = rawShellWords(node.args, node.escape).map((word): ArgDeclaration => {
    const eq = word.indexOf('=');
    return eq < 0 ? { key: word } : { key: word.slice(0, eq), value: word.slice(eq + 1) };
  });
  if (args.some((a) => a.key === '')) fail(node, ctx, 'ARG names can not be blank', node.argsOffset);
  return { kind: 'ARG', args };
}

/**
 * The value an ARG takes: `--build-arg` first, then its default, then (with no
 * default) the global ARG of the same name, then the automatic platform args.
 */
export function resolveArg(decl: ArgDeclaration, ctx: Pick<StepContext, 'buildArgs' | 'metaArgs' | 'platformArgs' | 'markBuildArgUsed'>, defaultValue: string | undefined): string | undefined {
  if (ctx.buildArgs.has(decl.key)) {
    ctx.markBuildArgUsed(decl.key);
    const given = ctx.buildArgs.get(decl.key);
    if (given !== undefined) return given;
  }
  if (defaultValue !== undefined) return defaultValue;
  if (ctx.metaArgs.has(decl.key)) return ctx.metaArgs.get(decl.key);
  return ctx.platformArgs.get(decl.key);
}

export function plan(instr: ArgInstruction, ctx: StepContext): StepOutcome {
  const args: ArgDeclaration[] = [];
  for (const decl of instr.args) {
    const key = ctx.expand(decl.key);
    const value = decl.value === undefined ? undefined : ctx.expand(decl.value);
    ctx.state.args.set(key, resolveArg({ key }, ctx, value));
    args.push(value === undefined ? { key } : { key, value });
  }
  const text = 'ARG ' + args.map((a) => (a.value === undefined ? a.key : `${a.key}=${a.value}`)).join(' ');
  return { type: 'metadata', instruction: { ...instr, args }, text };
}
