import type { InstructionNode } from '../dockerfile/node.js';
import { splitWhitespace } from '../dockerfile/forms.js';
import { fail, flagsOf, type ParseContext } from './common.js';
import type { FromInstruction } from './types.js';

export const flags = { platform: 'string' } as const;

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

export function parse(node: InstructionNode, ctx: ParseContext): FromInstruction {
  const f = flagsOf(node, ctx, flags);
  const words = splitWhitespace(node.args);
  if (words.length !== 1 && words.length !== 3) fail(node, ctx, 'FROM requires either one or three arguments');
  const out: FromInstruction = { kind: 'FROM', image: words[0]! };
  if (words.length === 3) {
    if (words[1]!.toLowerCase() !== 'as') fail(node, ctx, 'when using FROM with 3 arguments, the second argument must be "AS"', node.args.indexOf(words[1]!) + node.argsOffset);
    const name = words[2]!.toLowerCase();
    if (!STAGE_NAME.test(name)) {
      fail(node, ctx, `invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`, node.args.lastIndexOf(words[2]!) + node.argsOffset);
    }
    out.stageName = name;
  }
  const platform = f.strings.get('platform');
  if (platform !== undefined) out.platform = platform;
  return out;
}
