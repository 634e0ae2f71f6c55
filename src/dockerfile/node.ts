/**
 * An instruction as the parser sees it before any meaning is given: keyword,
 * builder flags, the argument text and heredoc bodies, with positions.
 */
import { DockerfileError, type SourceRange } from '../errors.js';
import { extractFlags, type RawFlag } from './flags.js';
import { positionAt, type EscapeChar, type Heredoc, type LogicalLine } from './scanner.js';

export interface InstructionNode {
  /** Upper-case keyword. */
  keyword: string;
  flags: RawFlag[];
  /** Arguments after the flags, continuations joined. */
  args: string;
  /** The whole logical line as written (continuations joined). */
  original: string;
  heredocs: Heredoc[];
  escape: EscapeChar;
  range: SourceRange;
  logical: LogicalLine;
  /** Offset of `args` within `original`. */
  argsOffset: number;
  /** Offset of the text after the keyword (flags included) within `original`. */
  afterKeywordOffset: number;
}

/** Error context shared by every parse and plan function. */
export interface SourceContext {
  file: string;
  sourceLines: readonly string[];
}

export function toNode(logical: LogicalLine, escape: EscapeChar): InstructionNode {
  const text = logical.text;
  const keywordMatch = /^\S+/.exec(text);
  const keyword = (keywordMatch?.[0] ?? '').toUpperCase();
  let afterKeyword = keywordMatch?.[0].length ?? 0;
  while (text[afterKeyword] === ' ' || text[afterKeyword] === '\t') afterKeyword++;
  const { flags, rest, restOffset } = extractFlags(text.slice(afterKeyword));
  for (const f of flags) f.offset += afterKeyword;
  const lastLine = logical.endLine;
  return {
    keyword,
    flags,
    args: rest.replace(/[ \t]+$/, ''),
    original: text,
    heredocs: logical.heredocs,
    escape,
    logical,
    argsOffset: afterKeyword + restOffset,
    afterKeywordOffset: afterKeyword,
    range: {
      start: { line: logical.startLine, column: logical.column },
      end: { line: lastLine, column: 1 },
    },
  };
}

/** A DockerfileError at an offset of the node's text (default: the keyword). */
export function nodeError(node: InstructionNode, ctx: SourceContext, message: string, offset = 0, options?: { cause?: unknown; code?: string }): DockerfileError {
  const pos = positionAt(node.logical, offset);
  return new DockerfileError(message, { start: pos, end: pos }, {
    file: ctx.file,
    sourceLine: ctx.sourceLines[pos.line - 1],
    ...(options?.cause !== undefined ? { cause: options.cause } : {}),
    ...(options?.code !== undefined ? { code: options.code } : {}),
  });
}
