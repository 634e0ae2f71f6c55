/**
 * Turns Dockerfile text into logical instruction lines, the way BuildKit's
 * parser does: parser directives at the top, comments and blank lines skipped,
 * escape-newline continuations joined (comment and blank lines inside them
 * dropped), and heredoc bodies read after the line that opens them.
 */
import { DockerfileError, type SourceRange } from '../errors.js';
import { findHeredocs, type HeredocMarker } from './heredoc.js';

export type EscapeChar = '\\' | '`';

export interface Directive {
  name: string; // lower-case
  value: string;
  line: number;
}

export interface Heredoc extends HeredocMarker {
  /** Body lines, each ending in "\n"; leading tabs removed for `<<-`. */
  content: string;
  /** 1-based lines of the body's first line and of the terminator. */
  startLine: number;
  endLine: number;
}

/** One instruction as written: the joined logical line plus where it came from. */
export interface LogicalLine {
  /** Joined text with continuations removed and leading whitespace trimmed. */
  text: string;
  startLine: number;
  /** Last physical line, heredoc terminators included. */
  endLine: number;
  /** 1-based column of the keyword on startLine. */
  column: number;
  heredocs: Heredoc[];
  /** A blank line sat inside a continuation (BuildKit warns; a future error). */
  emptyContinuationLine: boolean;
  /** Where each joined piece of `text` starts in the file, to map offsets back to positions. */
  pieces: { offset: number; line: number; column: number }[];
}

/** 1-based line and column of a 0-based offset into a logical line's text. */
export function positionAt(logical: LogicalLine, offset: number): { line: number; column: number } {
  let piece = logical.pieces[0]!;
  for (const p of logical.pieces) if (p.offset <= offset) piece = p;
  return { line: piece.line, column: piece.column + (offset - piece.offset) };
}

export interface ScanResult {
  directives: Directive[];
  escape: EscapeChar;
  lines: LogicalLine[];
  /** Physical lines, for showing the offending line in errors. */
  sourceLines: string[];
}

const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.*?)[ \t]*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const HEREDOC_INSTRUCTIONS = new Set(['RUN', 'COPY', 'ADD']);

export function splitPhysicalLines(source: string): string[] {
  // A UTF-8 BOM is ignored, like BuildKit; CRLF and LF both end a line.
  const text = source.startsWith('\uFEFF') ? source.slice(1) : source;
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length > 0 && lines[lines.length - 1] === '' && text.endsWith('\n')) lines.pop();
  return lines;
}

function leadingWhitespaceLength(s: string): number {
  let i = 0;
  while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  return i;
}

function isComment(line: string): boolean {
  return line[leadingWhitespaceLength(line)] === '#';
}

function isBlank(line: string): boolean {
  return line.trim() === '';
}

/** Strips a trailing escape (plus spaces/tabs after it); says whether the line goes on. */
function trimContinuation(line: string, escape: EscapeChar): { text: string; continues: boolean } {
  let end = line.length;
  while (end > 0 && (line[end - 1] === ' ' || line[end - 1] === '\t')) end--;
  // BuildKit's rule: the escape continues the line unless another escape stands right before it.
  if (end > 0 && line[end - 1] === escape && (end === 1 || line[end - 2] !== escape)) return { text: line.slice(0, end - 1), continues: true };
  return { text: line, continues: false };
}

function pointRange(line: number, column: number, endColumn = column): SourceRange {
  return { start: { line, column }, end: { line, column: endColumn } };
}

function readDirectives(lines: string[], fail: (msg: string, line: number, column?: number) => never): { directives: Directive[]; escape: EscapeChar; next: number } {
  const directives: Directive[] = [];
  let escape: EscapeChar = '\\';
  let i = 0;
  for (; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.slice(leadingWhitespaceLength(raw));
    const m = DIRECTIVE.exec(trimmed);
    if (!m) break;
    const name = m[1]!.toLowerCase();
    // An unknown `# key=value` is an ordinary comment and ends the directive block.
    if (!KNOWN_DIRECTIVES.has(name)) break;
    if (directives.some((d) => d.name === name)) fail(`only one ${name} parser directive can be used`, i + 1);
    const value = m[2]!;
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') fail(`invalid escape token '${value}' does not match ` + '` or \\', i + 1, raw.lastIndexOf(value) + 1);
      escape = value;
    }
    directives.push({ name, value, line: i + 1 });
  }
  return { directives, escape, next: i };
}

export function scan(source: string, file = 'Dockerfile'): ScanResult {
  const sourceLines = splitPhysicalLines(source);
  const fail = (message: string, line: number, column = 1): never => {
    throw new DockerfileError(message, pointRange(line, column), { file, sourceLine: sourceLines[line - 1] });
  };
  const { directives, escape, next } = readDirectives(sourceLines, fail);
  const lines: LogicalLine[] = [];

  let i = next;
  while (i < sourceLines.length) {
    const raw = sourceLines[i]!;
    const indent = leadingWhitespaceLength(raw);
    const startLine = i + 1;
    i++;
    if (isBlank(raw) || isComment(raw)) continue;

    let { text, continues } = trimContinuation(raw.slice(indent), escape);
    const pieces = [{ offset: 0, line: startLine, column: indent + 1 }];
    let emptyContinuationLine = false;
    while (continues && i < sourceLines.length) {
      const next = sourceLines[i]!;
      i++;
      if (isComment(next)) continue;
      if (isBlank(next)) {
        emptyContinuationLine = true;
        continue;
      }
      const part = trimContinuation(next, escape);
      pieces.push({ offset: text.length, line: i, column: 1 });
      text += part.text;
      continues = part.continues;
    }
    if (text.trim() === '') continue; // a line holding only an escape

    const keyword = (/^\S+/.exec(text)?.[0] ?? '').toUpperCase();
    const heredocs: Heredoc[] = [];
    if (HEREDOC_INSTRUCTIONS.has(keyword)) {
      for (const marker of findHeredocs(text, escape)) {
        const bodyStart = i + 1;
        let content = '';
        let terminated = false;
        while (i < sourceLines.length) {
          const bodyLine = sourceLines[i]!;
          i++;
          const candidate = marker.chomp ? bodyLine.replace(/^\t+/, '') : bodyLine;
          if (candidate === marker.name) {
            terminated = true;
            break;
          }
          content += (marker.chomp ? bodyLine.replace(/^\t+/, '') : bodyLine) + '\n';
        }
        if (!terminated) fail(`unterminated heredoc ${marker.name}`, startLine, indent + 1 + Math.max(0, text.indexOf(marker.raw)));
        heredocs.push({ ...marker, content, startLine: bodyStart, endLine: i });
      }
    }
    lines.push({ text, startLine, endLine: i, column: indent + 1, heredocs, emptyContinuationLine, pieces });
  }
  return { directives, escape, lines, sourceLines };
}
