/** How a build reports progress: Docker's classic plain output, or only the final ID. */
import { silentEvents, type BuildEvents, type StageTag } from '../exec/build.js';
import type { ImageId } from '../image/digest.js';
import { shortId } from './dockerfmt.js';

export type Write = (text: string) => void;

/**
 * `Step N/M : …`, ` ---> Running in …`, output, ` ---> <id>`: what `DOCKER_BUILDKIT=0 docker build` prints.
 * Stages building at the same time print the same, each line labelled `[<stage>] ` (steps
 * numbered within the stage), like BuildKit's plain output keeps its vertices apart.
 */
export function plainProgress(out: Write, err: Write): BuildEvents {
  return {
    stage: (tag) => plainProgress(labelLines(out, `[${tag.name}] `), err),
    step: (n, total, text) => out(`Step ${n}/${total} : ${text}\n`),
    cached: () => out(' ---> Using cache\n'),
    running: (id) => out(` ---> Running in ${shortId(id)}\n`),
    output: (chunk) => out(chunk.toString('utf8')),
    removing: (id) => out(`Removing intermediate container ${shortId(id)}\n`),
    committed: (id: ImageId) => out(` ---> ${shortId(id)}\n`),
    warning: (message) => err(`[WARNING]: ${message}\n`),
    done: (id, tags) => {
      out(`Successfully built ${shortId(id)}\n`);
      for (const t of tags) out(`Successfully tagged ${t}\n`);
    },
  };
}

/** Whole lines only, each with `prefix`: a stage's output never splits another's line. */
export function labelLines(out: Write, prefix: string): Write {
  let partial = '';
  return (text) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    if (parts.length > 0) out(parts.map((l) => prefix + l + '\n').join(''));
  };
}

/** `-q`: nothing but the image ID at the end. */
export function quietProgress(out: Write, err: Write): BuildEvents {
  return { ...silentEvents, warning: (message) => err(`[WARNING]: ${message}\n`), done: (id) => out(`${id}\n`) };
}

/**
 * A terminal view: one ora spinner per step with its elapsed time and a window
 * of the step's last output lines; finished steps stay as one line each.
 */
export async function ttyProgress(stream: NodeJS.WriteStream, err: Write, windowLines = 5): Promise<BuildEvents> {
  const { default: ora } = await import('ora');
  let spinner: ReturnType<typeof ora> | undefined;
  let title = '';
  let started = 0;
  let lines: string[] = [];
  let partial = '';
  let note = '';
  let timer: NodeJS.Timeout | undefined;
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  const render = () => {
    if (!spinner) return;
    const window = lines.slice(-windowLines).map((l) => `    ${l.slice(0, (stream.columns ?? 100) - 6)}`);
    spinner.text = [`${title} ${elapsed()}`, ...window].join('\n');
  };
  const finish = (ok: boolean) => {
    if (!spinner) return;
    clearInterval(timer);
    const line = `${title}${note ? `  ${note}` : ''}  ${elapsed()}`;
    if (ok) spinner.succeed(line);
    else spinner.fail(line);
    spinner = undefined;
  };
  let blocks: StageBlocks | undefined;
  return {
    stage: (tag) => (blocks ??= new StageBlocks(stream, windowLines)).sink(tag),
    step: (n, total, text) => {
      finish(true);
      title = `Step ${n}/${total} : ${text.replace(/\n/g, ' ')}`;
      started = Date.now();
      lines = [];
      partial = '';
      note = '';
      spinner = ora({ stream, text: title }).start();
      timer = setInterval(render, 100);
    },
    cached: () => void (note = 'CACHED'),
    running: () => undefined,
    output: (chunk) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      if (lines.length > 100) lines = lines.slice(-windowLines);
    },
    removing: () => undefined,
    committed: (id) => void (note = note ? `${note} ${shortId(id)}` : `---> ${shortId(id)}`),
    warning: (message) => err(`[WARNING]: ${message}\n`),
    done: (id, tags) => {
      finish(true);
      blocks?.close(true);
      stream.write(`Successfully built ${shortId(id)}\n`);
      for (const t of tags) stream.write(`Successfully tagged ${t}\n`);
    },
    failed: () => {
      finish(false);
      blocks?.close(false);
    },
  };
}

interface Block {
  tag: StageTag;
  title: string;
  note: string;
  started: number;
  lines: string[];
  partial: string;
}

/**
 * The tty view of stages building at the same time: one live block per running stage (its
 * current step, elapsed time and last output lines), redrawn in place below the finished
 * steps, which stay as one line each.
 */
class StageBlocks {
  private readonly running = new Map<number, Block>();
  private drawn = 0;
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly windowLines: number,
  ) {}

  sink(tag: StageTag): BuildEvents {
    const block = (): Block | undefined => this.running.get(tag.index);
    const end = (ok: boolean) => {
      const b = block();
      if (!b) return;
      this.running.delete(tag.index);
      this.print(`${ok ? '✔' : '✖'} ${this.headline(b)}`);
    };
    return {
      ...silentEvents,
      step: (n, total, text) => {
        end(true);
        this.running.set(tag.index, { tag, title: `[${tag.name} ${n}/${total}] ${text.replace(/\n/g, ' ')}`, note: '', started: Date.now(), lines: [], partial: '' });
        this.timer ??= setInterval(() => this.draw(), 100).unref();
        this.draw();
      },
      cached: () => void (block() && (block()!.note = 'CACHED')),
      output: (chunk) => {
        const b = block();
        if (!b) return;
        const parts = (b.partial + chunk.toString('utf8')).split('\n');
        b.partial = parts.pop() ?? '';
        b.lines.push(...parts);
        if (b.lines.length > 100) b.lines = b.lines.slice(-this.windowLines);
      },
      committed: (id) => {
        const b = block();
        if (b) b.note = b.note ? `${b.note} ${shortId(id)}` : `---> ${shortId(id)}`;
      },
      warning: (message) => this.print(`[WARNING]: ${message}`),
      finished: () => end(true),
    };
  }

  /** The build is over: what still runs ends as failed (or done), the live area goes. */
  close(ok: boolean): void {
    for (const b of [...this.running.values()]) {
      this.running.delete(b.tag.index);
      this.print(`${ok ? '✔' : '✖'} ${this.headline(b)}`);
    }
    clearInterval(this.timer);
    this.timer = undefined;
    this.draw();
  }

  private headline(b: Block): string {
    return `${b.title}${b.note ? `  ${b.note}` : ''}  ${((Date.now() - b.started) / 1000).toFixed(1)}s`;
  }

  private clear(): void {
    if (this.drawn > 0) this.stream.write(`\x1b[${this.drawn}F\x1b[J`);
    this.drawn = 0;
  }

  /** A permanent line above the live blocks. */
  private print(line: string): void {
    this.clear();
    this.stream.write(line + '\n');
    this.draw();
  }

  private draw(): void {
    this.clear();
    const width = (this.stream.columns || 100) - 1; // 0 on a pty with no size
    const spin = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'][this.frame++ % 10];
    const out: string[] = [];
    for (const b of this.running.values()) {
      out.push(`${spin} ${this.headline(b)}`.slice(0, width));
      for (const l of b.lines.slice(-this.windowLines)) out.push(`    ${l}`.slice(0, width));
    }
    if (out.length > 0) this.stream.write(out.join('\n') + '\n');
    this.drawn = out.length;
  }
}
