/** Pieces several instruction files share. */
import type { InstructionNode, SourceContext } from '../dockerfile/node.js';
import { nodeError } from '../dockerfile/node.js';
import { FlagError, parseFlags, type FlagSpecs, type ParsedFlags } from '../dockerfile/flags.js';
import { FormError, parseJsonArray } from '../dockerfile/forms.js';
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

/** parseJsonArray with its error reported at the node's arguments. */
export function jsonArrayOf(node: InstructionNode, ctx: ParseContext, text = node.args): string[] | undefined {
  try {
    return parseJsonArray(text);
  } catch (e) {
    if (e instanceof FormError) fail(node, ctx, e.message, node.argsOffset);
    throw e;
  }
}

/** RUN/CMD/ENTRYPOINT: a JSON array of strings is exec form, anything else shell form. */
export function commandFormOf(node: InstructionNode, ctx: ParseContext, text = node.args): CommandForm {
  const args = jsonArrayOf(node, ctx, text);
  return args ? { form: 'exec', args } : { form: 'shell', command: text };
}

export function requireArgs(node: InstructionNode, ctx: ParseContext, message: string): void {
  if (node.args.trim() === '' && node.heredocs.length === 0) fail(node, ctx, message);
}

/** Offset of a flag in the node's text (for errors about its value), else of the arguments. */
export function flagOffset(node: InstructionNode, name: string): number {
  return node.flags.find((f) => f.name === name)?.offset ?? node.argsOffset;
}

/** Offset of `word` in the node's text, searching from the arguments; the arguments' start if absent. */
export function wordOffset(node: InstructionNode, word: string): number {
  const at = node.original.indexOf(word, node.afterKeywordOffset);
  return at < 0 ? node.argsOffset : at;
}

export const atLeastOne = (kw: string): string => `${kw} requires at least one argument`;
export const exactlyOne = (kw: string): string => `${kw} requires exactly one argument`;

/** Shell form runs through the stage's shell; exec form as written. */
export function commandLine(form: CommandForm, shell: string[]): string[] {
  return form.form === 'exec' ? [...form.args] : [...shell, form.command];
}
