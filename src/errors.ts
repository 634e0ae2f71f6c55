/** Base of every error tsbuild raises on purpose; `code` is stable for scripts and tests. */
export class TsbuildError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** 1-based line and column, like editors and `docker build` show them. */
export interface SourcePosition {
  line: number;
  column: number;
}

export interface SourceRange {
  start: SourcePosition;
  end: SourcePosition;
}

/** An error in Dockerfile text; prints as `file:LINE:COL: message` plus the offending line. */
export class DockerfileError extends TsbuildError {
  readonly range: SourceRange;
  file: string;
  sourceLine: string | undefined;
  constructor(message: string, range: SourceRange, options?: { cause?: unknown; file?: string; sourceLine?: string; code?: string }) {
    super(options?.code ?? 'DOCKERFILE', message, options);
    this.range = range;
    this.file = options?.file ?? 'Dockerfile';
    this.sourceLine = options?.sourceLine;
  }

  /** `Dockerfile:3:1: message` then the source line and a caret, for the CLI. */
  format(): string {
    const head = `${this.file}:${this.range.start.line}:${this.range.start.column}: ${this.message}`;
    if (this.sourceLine === undefined) return head;
    const caret = ' '.repeat(Math.max(0, this.range.start.column - 1)) + '^';
    return `${head}\n  ${this.range.start.line} | ${this.sourceLine}\n  ${' '.repeat(String(this.range.start.line).length)} | ${caret}`;
  }
}
