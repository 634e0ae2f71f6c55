/** How a build reports progress: Docker's classic plain output, or only the final ID. */
import { silentEvents, type BuildEvents } from '../exec/build.js';
import type { ImageId } from '../image/digest.js';
import { shortId } from './dockerfmt.js';

export type Write = (text: string) => void;

/** `Step N/M : …`, ` ---> Running in …`, output, ` ---> <id>`: what `DOCKER_BUILDKIT=0 docker build` prints. */
export function plainProgress(out: Write, err: Write): BuildEvents {
  return {
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
  return {
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
      stream.write(`Successfully built ${shortId(id)}\n`);
      for (const t of tags) stream.write(`Successfully tagged ${t}\n`);
    },
    failed: () => finish(false),
  };
}
