/** Pieces several instruction files share. */
import type { InstructionNode, SourceContext } from '../dockerfile/node.js';
import { nodeError } from '../dockerfile/node.js';
import { FlagError, parseFlags, type FlagSpecs, type ParsedFlags } from '../dockerfile/flags.js';
import { parseJsonArray } from '../dockerfile/forms.js';
import type { CommandForm } from './types.js';

export interface ParseContext extends SourceContext {}

export function fail(node: InstructionNode, ctx: ParseContext, message: string, offset = 0): never {
  throw nodeError(node, ctx, message, offset);
}

/** Validates the node's flags against the instruction's specs (an instruction with none rejects any). */
export function flagsOf(node: InstructionNode, ctx: ParseContext, specs: FlagSpecs = {}): ParsedFlags {
  try {
    return parseFlags(node.flags, specs);
  } catch (e) {
    if (e instanceof FlagError) fail(node, ctx, e.message, e.offset);
    throw e;
  }
}

/** RUN/CMD/ENTRYPOINT: a JSON array of strings is exec form, anything else shell form. */
export function commandFormOf(node: InstructionNode): CommandForm {
  const args = parseJsonArray(node.args);
  return args ? { form: 'exec', args } : { form: 'shell', command: node.args };
}

export function requireArgs(node: InstructionNode, ctx: ParseContext, message: string): void {
  if (node.args.trim() === '' && node.heredocs.length === 0) fail(node, ctx, message);
}

export const atLeastOne = (kw: string): string => `${kw} requires at least one argument`;
export const exactlyOne = (kw: string): string => `${kw} requires exactly one argument`;

/** Shell form runs through the stage's shell; exec form as written. */
export function commandLine(form: CommandForm, shell: string[]): string[] {
  return form.form === 'exec' ? [...form.args] : [...shell, form.command];
}
