/** Dockerfile text → typed instructions grouped into stages, with no expansion yet. */
import { DockerfileError } from '../errors.js';
import { toNode, nodeError, type InstructionNode } from '../dockerfile/node.js';
import { scan, type Directive, type EscapeChar } from '../dockerfile/scanner.js';
import { parseInstruction } from '../instructions/index.js';
import type { ArgInstruction, FromInstruction, Instruction } from '../instructions/types.js';

export interface ParsedInstruction {
  node: InstructionNode;
  instruction: Instruction;
}

export interface ParsedStage {
  from: ParsedInstruction & { instruction: FromInstruction };
  body: ParsedInstruction[];
}

export interface ParsedDockerfile {
  file: string;
  directives: Directive[];
  escape: EscapeChar;
  /** ARGs before the first FROM. */
  metaArgs: (ParsedInstruction & { instruction: ArgInstruction })[];
  stages: ParsedStage[];
  sourceLines: string[];
  /** Parser-level warnings (empty continuation lines). */
  warnings: { message: string; line: number }[];
}

export function parseDockerfile(source: string, file = 'Dockerfile'): ParsedDockerfile {
  const scanned = scan(source, file);
  const ctx = { file, sourceLines: scanned.sourceLines };
  const parsed: ParsedDockerfile = { file, directives: scanned.directives, escape: scanned.escape, metaArgs: [], stages: [], sourceLines: scanned.sourceLines, warnings: [] };
  for (const logical of scanned.lines) {
    const node = toNode(logical, scanned.escape);
    const instruction = parseInstruction(node, ctx);
    if (logical.emptyContinuationLine) {
      parsed.warnings.push({ message: `Empty continuation line found in: ${logical.text.slice(0, 60)}`, line: logical.startLine });
    }
    const item = { node, instruction };
    if (instruction.kind === 'FROM') {
      parsed.stages.push({ from: { node, instruction }, body: [] });
    } else if (parsed.stages.length > 0) {
      parsed.stages[parsed.stages.length - 1]!.body.push(item);
    } else if (instruction.kind === 'ARG') {
      parsed.metaArgs.push({ node, instruction });
    } else {
      throw nodeError(node, ctx, 'no build stage in current context');
    }
  }
  if (parsed.stages.length === 0) {
    // Like BuildKit, a file of comments fails at its last line; an empty one at 1:1.
    const empty = source.trim() === '';
    const line = scanned.lines[0]?.startLine ?? (empty ? 1 : Math.max(1, scanned.sourceLines.length));
    const message = empty ? 'the Dockerfile cannot be empty' : scanned.lines.length === 0 ? 'file with no instructions' : 'file with no stage (no FROM instruction)';
    throw new DockerfileError(message, {
      start: { line, column: 1 },
      end: { line, column: 1 },
    }, { file, sourceLine: scanned.sourceLines[line - 1] });
  }
  return parsed;
}
