/**
 * Per-layer progress like `docker pull`/`docker push`: on a terminal one line per
 * layer, rewritten in place (`a3ed95caeb02: Downloading [=====>    ]  1.2MB/2.5MB`);
 * elsewhere one line per status change, without the bars.
 */
export interface ByteProgress {
  current: number;
  total?: number;
}

export interface ProgressSink {
  /** A line of its own: `latest: Pulling from foo`, `Digest: sha256:…`. */
  message(text: string): void;
  /** A layer's status (`Downloading`, `Pull complete`…), with byte progress when known. */
  layer(id: string, status: string, progress?: ByteProgress): void;
  /** Flushes and stops; later calls are ignored. */
  close(): void;
}

export const silentProgress: ProgressSink = { message: () => undefined, layer: () => undefined, close: () => undefined };

/** go-units HumanSize: decimal units, 3 significant digits (`1.23MB`, `745kB`, `12B`). */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/** Docker's jsonmessage progress: `[====>     ]  1.2MB/2.5MB` (50 columns of bar). */
export function progressText(p: ByteProgress, width = 50): string {
  if (p.total === undefined || p.total <= 0) return humanSize(p.current);
  const fraction = Math.min(1, p.current / p.total);
  const filled = Math.floor(fraction * width);
  const bar = filled >= width ? '='.repeat(width) : '='.repeat(filled) + '>' + ' '.repeat(width - filled - 1);
  return `[${bar}] ${humanSize(p.current).padStart(8)}/${humanSize(p.total)}`;
}

/** Status changes only, one line each. */
export function plainProgress(write: (text: string) => void): ProgressSink {
  const last = new Map<string, string>();
  let closed = false;
  return {
    message: (text) => {
      if (!closed) write(`${text}\n`);
    },
    layer: (id, status) => {
      if (closed || last.get(id) === status) return;
      last.set(id, status);
      write(`${id}: ${status}\n`);
    },
    close: () => void (closed = true),
  };
}

/** A terminal view: lines kept in order of first appearance, rewritten in place (throttled). */
export function ttyProgress(stream: NodeJS.WriteStream, intervalMs = 100): ProgressSink {
  const lines: { id: string | undefined; text: string }[] = [];
  const index = new Map<string, number>();
  const lastDraw = new Map<string, { status: string; at: number }>();
  let closed = false;
  const fit = (s: string) => {
    const cols = stream.columns || 120;
    return s.length >= cols ? s.slice(0, Math.max(1, cols - 1)) : s;
  };
  const draw = (i: number) => {
    const up = lines.length - i;
    stream.write(`\x1b[${up}A\r\x1b[2K${fit(lines[i]!.text)}\r\x1b[${up}B`);
  };
  return {
    message: (text) => {
      if (closed) return;
      lines.push({ id: undefined, text });
      stream.write(`${fit(text)}\n`);
    },
    layer: (id, status, progress) => {
      if (closed) return;
      const text = `${id}: ${status}${progress ? ` ${progressText(progress)}` : ''}`;
      const i = index.get(id);
      if (i === undefined) {
        index.set(id, lines.length);
        lines.push({ id, text });
        lastDraw.set(id, { status, at: Date.now() });
        stream.write(`${fit(text)}\n`);
        return;
      }
      lines[i]!.text = text;
      const prev = lastDraw.get(id);
      const now = Date.now();
      if (prev && prev.status === status && progress && progress.current !== progress.total && now - prev.at < intervalMs) return;
      lastDraw.set(id, { status, at: now });
      draw(i);
    },
    close: () => {
      if (closed) return;
      for (let i = 0; i < lines.length; i++) if (lines[i]!.id !== undefined) draw(i);
      closed = true;
    },
  };
}
