/**
 * Plain tar archives around images (docker save / OCI layout tars): a streaming
 * reader that extracts into a directory without ever writing outside it, and
 * a writer with Docker's header conventions for what `tsbuild save` emits.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, symlink, lstat } from 'node:fs/promises';
import { dirname, join, normalize, relative, resolve, sep } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { TsbuildError } from '../errors.js';
import { BLOCK_SIZE, blockPadding, decodeHeaderBlock, encodeHeader, END_OF_ARCHIVE, isZeroBlock, parsePaxRecords, TarFormatError } from '../layer/tar-header.js';
import { ByteReader } from './byte-reader.js';

export class ArchiveError extends TsbuildError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BAD_ARCHIVE', message, options);
  }
}

/** Undoes gzip when the stream starts with its magic; other streams pass through. */
export async function decompressed(stream: Readable): Promise<Readable> {
  const reader = stream[Symbol.asyncIterator]();
  const first = await reader.next();
  const out = new PassThrough();
  const head: Buffer = first.done ? Buffer.alloc(0) : Buffer.from(first.value as Buffer);
  const rest = async () => {
    try {
      if (head.length > 0) out.write(head);
      for (;;) {
        const n = await reader.next();
        if (n.done) break;
        if (!out.write(n.value)) await new Promise((r) => out.once('drain', r));
      }
      out.end();
    } catch (e) {
      out.destroy(e as Error);
    }
  };
  void rest();
  if (head[0] === 0x1f && head[1] === 0x8b) return out.pipe(createGunzip());
  return out;
}

/** A path inside `dir` for an archive entry name, or an error naming the entry. */
function safeJoin(dir: string, name: string): string {
  const clean = normalize(name).replace(/\/+$/, '');
  if (name.startsWith('/') || clean === '..' || clean.startsWith('..' + sep)) throw new ArchiveError(`archive entry ${JSON.stringify(name)} points outside the archive`);
  return join(dir, clean);
}

/** Extracts regular files, directories and in-archive symlinks; anything else is skipped. */
export async function extractArchive(stream: Readable, dest: string): Promise<string[]> {
  const reader = new ByteReader(stream);
  const names: string[] = [];
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Map<string, string> | undefined;
  for (;;) {
    const block = await reader.read(BLOCK_SIZE);
    if (block.length === 0) throw new ArchiveError('truncated archive: no end-of-archive marker');
    if (block.length < BLOCK_SIZE) throw new ArchiveError('truncated archive: short header block');
    if (isZeroBlock(block)) return names;
    let h;
    try {
      h = decodeHeaderBlock(block);
    } catch (e) {
      throw new ArchiveError(e instanceof TarFormatError ? `corrupt archive: ${e.message}` : String(e), { cause: e });
    }
    const readBody = async (): Promise<Buffer> => {
      const body = await reader.read(h.size);
      if (body.length < h.size) throw new ArchiveError(`truncated archive in ${JSON.stringify(h.name)}`);
      await reader.read(blockPadding(h.size));
      return body;
    };
    if (h.typeflag === 'x') {
      pax = new Map([...parsePaxRecords(await readBody())].map(([k, v]) => [Buffer.from(k, 'latin1').toString(), Buffer.from(v, 'latin1').toString()]));
      continue;
    }
    if (h.typeflag === 'g') {
      await readBody();
      continue;
    }
    if (h.typeflag === 'L' || h.typeflag === 'K') {
      const v = (await readBody()).toString('utf8').replace(/\0+$/, '');
      if (h.typeflag === 'L') longName = v;
      else longLink = v;
      continue;
    }
    const name = pax?.get('path') ?? longName ?? Buffer.from(h.name, 'latin1').toString('utf8');
    const linkname = pax?.get('linkpath') ?? longLink ?? Buffer.from(h.linkname, 'latin1').toString('utf8');
    const size = pax?.has('size') ? Number(pax.get('size')) : h.size;
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    const target = safeJoin(dest, name);
    names.push(name.replace(/\/+$/, ''));
    if (h.typeflag === '5') {
      await mkdir(target, { recursive: true });
    } else if (h.typeflag === '0' || h.typeflag === '\0' || h.typeflag === '7') {
      await mkdir(dirname(target), { recursive: true });
      await ensureNoSymlinkParents(dest, target, name);
      const out = createWriteStream(target, { flags: 'wx', mode: 0o600 });
      let failed: Error | undefined;
      out.on('error', (e) => (failed = e));
      const got = await reader.pipe(size, async (c) => {
        if (failed) throw failed;
        if (!out.write(c)) await new Promise<void>((r) => out.once('drain', () => r()));
      });
      await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ?? failed ? rej(err ?? failed) : res())));
      if (got < size) throw new ArchiveError(`truncated archive in ${JSON.stringify(name)}`);
      await reader.read(blockPadding(size));
    } else if (h.typeflag === '2') {
      // Docker's save links a repeated layer to its first copy: `../<v1id>/layer.tar`.
      const resolved = resolve(dirname(target), linkname);
      if (relative(dest, resolved).startsWith('..')) throw new ArchiveError(`archive entry ${JSON.stringify(name)} links outside the archive`);
      await mkdir(dirname(target), { recursive: true });
      await symlink(linkname, target);
    } else {
      await reader.read(size + blockPadding(size));
    }
  }
}

async function ensureNoSymlinkParents(root: string, target: string, name: string): Promise<void> {
  let dir = dirname(target);
  while (dir.length > root.length) {
    if ((await lstat(dir)).isSymbolicLink()) throw new ArchiveError(`archive entry ${JSON.stringify(name)} is written through a symlink`);
    dir = dirname(dir);
  }
}

export interface ArchiveWriterOptions {
  mtime: number;
}

/** Writes an uncompressed tar with Docker's archive conventions (root-owned, PAX only when needed). */
export class ArchiveWriter {
  constructor(private readonly out: Writable) {}

  private async write(chunk: Buffer): Promise<void> {
    if (!this.out.write(chunk)) await new Promise((r) => this.out.once('drain', r));
  }

  private header(typeflag: string, name: string, mode: number, size: number, mtime: number, linkname = ''): Buffer {
    return encodeHeader({
      typeflag,
      name: Buffer.from(name).toString('latin1'),
      linkname: Buffer.from(linkname).toString('latin1'),
      mode,
      uid: 0,
      gid: 0,
      size,
      mtime,
      uname: 'root',
      gname: 'root',
      devmajor: 0,
      devminor: 0,
    });
  }

  async dir(name: string, mtime: number): Promise<void> {
    await this.write(this.header('5', name.endsWith('/') ? name : name + '/', 0o40755, 0, mtime));
  }

  async file(name: string, content: Buffer | Readable, size: number, mtime: number): Promise<void> {
    await this.write(this.header('0', name, 0o100644, size, mtime));
    let written = 0;
    if (Buffer.isBuffer(content)) {
      await this.write(content);
      written = content.length;
    } else {
      for await (const chunk of content) {
        await this.write(chunk as Buffer);
        written += (chunk as Buffer).length;
      }
    }
    if (written !== size) throw new ArchiveError(`${name}: expected ${size} bytes, wrote ${written}`);
    await this.write(Buffer.alloc(blockPadding(size)));
  }

  async symlink(name: string, target: string, mtime: number): Promise<void> {
    await this.write(this.header('2', name, 0o120777, 0, mtime, target));
  }

  async finish(): Promise<void> {
    await this.write(END_OF_ARCHIVE);
    await new Promise<void>((res, rej) => this.out.end((err?: Error | null) => (err ? rej(err) : res())));
  }
}
