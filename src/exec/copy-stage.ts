/**
 * COPY/ADD sources that are not files of the context — heredoc bodies
 * (`COPY <<EOF /dst`) and ADD URLs — are written into a staging dir first; the
 * copy then reads them like context files, hashes included.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, utimes, writeFile, chmod } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TsbuildError } from '../errors.js';
import type { CopyInstruction } from '../instructions/types.js';

export interface StagedSources {
  contextDir: string;
  instruction: CopyInstruction;
  dispose(): Promise<void>;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

export function needsStaging(instr: CopyInstruction): boolean {
  return instr.heredocs.length > 0 || (instr.kind === 'ADD' && instr.sources.some(isUrl));
}

/** The file name ADD gives a download: the URL's last path segment. */
export function urlFileName(url: string): string {
  const name = basename(new URL(url).pathname);
  if (name === '' || name === '/') throw new TsbuildError('ADD_URL', `cannot determine a filename from url: ${url}`);
  return decodeURIComponent(name);
}

async function download(url: string, file: string, checksum: string | undefined, fetchImpl: typeof fetch): Promise<void> {
  let res: Response;
  try {
    res = await fetchImpl(url, { redirect: 'follow' });
  } catch (e) {
    throw new TsbuildError('ADD_URL', `failed to fetch ${url}: ${(e as Error).message}`, { cause: e });
  }
  if (!res.ok || !res.body) throw new TsbuildError('ADD_URL', `failed to fetch ${url}: ${res.status} ${res.statusText}`);
  const hash = createHash(checksum?.split(':')[0] ?? 'sha256');
  const tmp = `${file}.part`;
  await pipeline(
    Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
    async function* (source) {
      for await (const chunk of source) {
        hash.update(chunk as Buffer);
        yield chunk;
      }
    },
    createWriteStream(tmp, { mode: 0o600 }),
  );
  // --checksum is verified before the file can reach any layer.
  if (checksum !== undefined && `${checksum.split(':')[0]}:${hash.digest('hex')}` !== checksum) {
    await rm(tmp, { force: true });
    throw new TsbuildError('CHECKSUM', `digest mismatch for ${url}: expected ${checksum}`);
  }
  const { rename } = await import('node:fs/promises');
  await rename(tmp, file);
  await chmod(file, 0o600);
  const lastModified = res.headers.get('last-modified');
  const mtime = lastModified ? Date.parse(lastModified) / 1000 : NaN;
  if (!Number.isNaN(mtime)) await utimes(file, mtime, mtime);
}

export async function stageSources(instr: CopyInstruction, scratch: string, opts: { epoch?: number; fetchImpl?: typeof fetch } = {}): Promise<StagedSources> {
  const dir = await mkdtemp(join(scratch, 'sources-'));
  try {
    const heredocs = new Map(instr.heredocs.map((h) => [h.name, h]));
    const sources: string[] = [];
    for (const src of instr.sources) {
      const doc = heredocs.get(src);
      if (doc) {
        // Copied into a directory, a heredoc file is named after its delimiter, as in BuildKit.
        const name = doc.name;
        await writeFile(join(dir, name), doc.content, { mode: 0o644 });
        const t = opts.epoch ?? 0;
        await utimes(join(dir, name), t, t);
        sources.push(name);
      } else if (instr.kind === 'ADD' && isUrl(src)) {
        const name = urlFileName(src);
        await download(src, join(dir, name), instr.checksum, opts.fetchImpl ?? fetch);
        sources.push(name);
      } else {
        throw new TsbuildError('NOT_SUPPORTED', `${instr.kind} cannot mix context files with heredoc or URL sources yet (${src})`);
      }
    }
    const instruction: CopyInstruction = { ...instr, sources, heredocs: [] };
    delete instruction.checksum;
    return { contextDir: dir, instruction, dispose: () => rm(dir, { recursive: true, force: true }) };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
