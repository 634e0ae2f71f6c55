/**
 * tar-split metadata (vbatts/tar-split v0.11.2 `storage` JSON packer) — STORE-FORMAT.md §3.
 *
 * A tar-split is gzip of JSON lines, one per entry, in this exact key order and Go encoding/json
 * escaping (HTML-safe: `<`, `>`, `&` as \u003c \u003e \u0026; U+2028/9 escaped):
 *   segment: {"type":2,"payload":"<base64 raw bytes>","position":N}
 *   file:    {"type":1,"name":"<header name>","size":S,"payload":"<base64 crc64>","position":N}
 * `name_raw` (base64) replaces `name` for non-UTF-8 names; `size` is omitted when 0; a file's payload
 * is `null` when the size is 0; an empty segment payload is `""`.
 */
import { Readable } from 'node:stream';
import { createGzip, gunzipSync } from 'node:zlib';
import { open } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { type ByteString, bstrDisplay, bstrIsUtf8, bstrToBytes, bytesToBStr, goClean } from './bytes.js';
import { Crc64 } from './crc64.js';
import { LayerError } from './errors.js';

export const FILE_TYPE = 1;
export const SEGMENT_TYPE = 2;

export type TarSplitEntry =
  | { type: typeof SEGMENT_TYPE; payload: Buffer; position: number }
  | {
      type: typeof FILE_TYPE;
      /** The header name, as a byte string. */
      name: ByteString;
      size: number;
      /** 8-byte big-endian CRC-64/ISO of the contents, or null for size 0. */
      payload: Buffer | null;
      position: number;
    };

const HEX = '0123456789abcdef';

/** A JSON string literal exactly as Go's encoding/json writes it (escapeHTML on). `s` is a JS string. */
export function goJsonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c < 0x20 || c === 0x22 || c === 0x5c || c === 0x3c || c === 0x3e || c === 0x26) {
      switch (c) {
        case 0x22:
          esc = '\\"';
          break;
        case 0x5c:
          esc = '\\\\';
          break;
        case 0x0a:
          esc = '\\n';
          break;
        case 0x0d:
          esc = '\\r';
          break;
        case 0x09:
          esc = '\\t';
          break;
        default:
          esc = `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`;
      }
    } else if (c === 0x2028 || c === 0x2029) {
      esc = `\\u202${HEX[c & 0xf]}`;
    }
    if (esc !== undefined) {
      out += s.slice(start, i) + esc;
      start = i + 1;
    }
  }
  return `${out + s.slice(start)}"`;
}

/** One JSON line (without the newline) for an entry, as tar-split's JSON packer writes it. */
export function encodeTarSplitEntry(e: TarSplitEntry): string {
  if (e.type === SEGMENT_TYPE) {
    return `{"type":2,"payload":"${e.payload.toString('base64')}","position":${e.position}}`;
  }
  let s = '{"type":1';
  if (e.name !== '') {
    s += bstrIsUtf8(e.name) ? `,"name":${goJsonString(bstrToBytes(e.name).toString('utf8'))}` : `,"name_raw":"${bstrToBytes(e.name).toString('base64')}"`;
  }
  if (e.size !== 0) s += `,"size":${e.size}`;
  s += `,"payload":${e.payload === null ? 'null' : `"${e.payload.toString('base64')}"`}`;
  return `${s},"position":${e.position}}`;
}

/** The key tar-split uses to refuse duplicate paths: filepath.Clean of the name. */
function dupKey(name: ByteString): ByteString {
  return goClean(name);
}

/**
 * Streams tar-split JSON lines into gzip. Positions count every entry from 0. A file entry whose
 * cleaned name was already seen is refused, as tar-split's packer does
 * ("duplicates of file paths not supported").
 */
export class TarSplitWriter {
  private position = 0;
  private readonly gz = createGzip();
  private readonly out: Buffer[] = [];
  private pending = '';
  private readonly seen = new Set<ByteString>();
  private readonly done: Promise<void>;

  constructor() {
    this.gz.on('data', (c: Buffer) => this.out.push(c));
    this.done = new Promise((resolve, reject) => {
      this.gz.on('end', resolve);
      this.gz.on('error', reject);
    });
  }

  addSegment(payload: Buffer): void {
    this.push({ type: SEGMENT_TYPE, payload, position: this.position });
  }

  /** `crc` may still be computing (crc64-thread.ts): entries after it wait, in order. */
  addFile(name: ByteString, size: number, crc: Buffer | null | Promise<Buffer>): void {
    const key = dupKey(name);
    if (this.seen.has(key)) {
      throw new LayerError('duplicates of file paths not supported', { entry: bstrDisplay(name), code: 'LAYER_CORRUPT' });
    }
    this.seen.add(key);
    if (crc instanceof Promise) {
      const e: TarSplitEntry = { type: FILE_TYPE, name, size, payload: null, position: this.position++ };
      const waiting = { e, crc: crc.then((c) => void (e.payload = c)) };
      // A failure surfaces in finish(); until then it must not count as unhandled.
      waiting.crc.catch(() => undefined);
      this.waiting.push(waiting);
      return;
    }
    this.push({ type: FILE_TYPE, name, size, payload: crc, position: this.position });
  }

  /** Entries behind a CRC still computing, oldest first (the first is such a file). */
  private readonly waiting: Array<{ e: TarSplitEntry; crc?: Promise<void> }> = [];

  private push(e: TarSplitEntry): void {
    if (this.waiting.length > 0) {
      this.waiting.push({ e });
      this.position++;
      this.drainSettled();
      return;
    }
    this.encode(e);
    this.position++;
  }

  private encode(e: TarSplitEntry): void {
    this.pending += `${encodeTarSplitEntry(e)}\n`;
    if (this.pending.length >= 1 << 16) this.flush();
  }

  /** Encodes the waiting entries whose CRCs are in. */
  private drainSettled(): void {
    while (this.waiting.length > 0 && (this.waiting[0]!.crc === undefined || this.waiting[0]!.e.payload !== null)) this.encode(this.waiting.shift()!.e);
  }

  private flush(): void {
    if (this.pending.length > 0) {
      this.gz.write(Buffer.from(this.pending, 'utf8'));
      this.pending = '';
    }
  }

  /** Ends the stream; resolves to the gzipped tar-split. */
  async finish(): Promise<Buffer> {
    for (const w of this.waiting) await w.crc;
    this.drainSettled();
    this.flush();
    this.gz.end();
    await this.done;
    return Buffer.concat(this.out);
  }
}

function corrupt(msg: string): LayerError {
  return new LayerError(`tar-split: ${msg}`, { code: 'LAYER_CORRUPT' });
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeB64(v: unknown, what: string): Buffer {
  if (typeof v !== 'string' || !B64.test(v)) throw corrupt(`${what} is not base64`);
  return Buffer.from(v, 'base64');
}

/** The JSON lines of a gzipped tar-split (for comparisons and debugging). */
export function tarSplitLines(gz: Buffer): string[] {
  const text = gunzipSync(gz).toString('utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** Parse a gzipped tar-split (`tar-split.json.gz`) back into entries, with tar-split's checks. */
export function readTarSplit(gz: Buffer): TarSplitEntry[] {
  let lines: string[];
  try {
    lines = tarSplitLines(gz);
  } catch (cause) {
    throw new LayerError('tar-split: not gzip data', { code: 'LAYER_CORRUPT', cause });
  }
  const entries: TarSplitEntry[] = [];
  const seen = new Set<ByteString>();
  for (const [i, line] of lines.entries()) {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch (cause) {
      throw new LayerError(`tar-split: line ${i + 1} is not JSON`, { code: 'LAYER_CORRUPT', cause });
    }
    if (o === null || typeof o !== 'object') throw corrupt(`line ${i + 1} is not an object`);
    const position = o.position ?? 0;
    if (typeof position !== 'number' || !Number.isSafeInteger(position)) throw corrupt(`line ${i + 1}: bad position`);
    if (o.type === SEGMENT_TYPE) {
      const payload = o.payload === null || o.payload === undefined ? Buffer.alloc(0) : decodeB64(o.payload, `line ${i + 1} payload`);
      entries.push({ type: SEGMENT_TYPE, payload, position });
    } else if (o.type === FILE_TYPE) {
      let name: ByteString;
      if (typeof o.name === 'string' && o.name !== '') name = Buffer.from(o.name, 'utf8').toString('latin1');
      else if (o.name_raw !== undefined && o.name_raw !== null) name = bytesToBStr(decodeB64(o.name_raw, `line ${i + 1} name_raw`));
      else name = '';
      const size = o.size ?? 0;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw corrupt(`line ${i + 1}: bad size`);
      const payload = o.payload === null || o.payload === undefined ? null : decodeB64(o.payload, `line ${i + 1} payload`);
      const key = dupKey(name);
      if (seen.has(key)) throw new LayerError('duplicates of file paths not supported', { entry: bstrDisplay(name), code: 'LAYER_CORRUPT' });
      seen.add(key);
      entries.push({ type: FILE_TYPE, name, size, payload, position });
    } else {
      throw corrupt(`line ${i + 1}: unknown entry type ${JSON.stringify(o.type)}`);
    }
  }
  return entries;
}

/** Supplies the contents of a file entry: `name` as UTF-8 (lossy for non-UTF-8 names), `nameBytes` exact. */
export type FileContent = (name: string, nameBytes: Buffer) => Readable | Buffer | Promise<Readable | Buffer>;

/**
 * A FileContent reading `<dir>/<name>` (tar-split asm --path semantics), refusing to follow a
 * symlink at the last component.
 */
export function dirFileContent(dir: string): FileContent {
  const base = Buffer.from(dir, 'utf8');
  return async (_name, nameBytes) => {
    const p = Buffer.concat([base, Buffer.from('/'), nameBytes]);
    const fh = await open(p, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    return fh.createReadStream();
  };
}

/**
 * Rebuild the tar a tar-split describes: segments verbatim, each file entry with size > 0 from
 * `fileContent`, checked against the entry's size and CRC-64 ("file integrity checksum failed").
 * Entries with size 0 are not looked up. Errors surface on the returned stream.
 */
export function assembleTar(tarSplit: Buffer | readonly TarSplitEntry[], fileContent: FileContent): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    const entries = Buffer.isBuffer(tarSplit) ? readTarSplit(tarSplit) : tarSplit;
    for (const e of entries) {
      if (e.type === SEGMENT_TYPE) {
        if (e.payload.length > 0) yield e.payload;
        continue;
      }
      if (e.size === 0) continue;
      const nameBytes = bstrToBytes(e.name);
      const display = bstrDisplay(e.name);
      const src = await fileContent(display, nameBytes);
      const crc = new Crc64();
      let n = 0;
      if (Buffer.isBuffer(src)) {
        crc.update(src);
        n = src.length;
        yield src;
      } else {
        for await (const chunk of src as AsyncIterable<Buffer | string>) {
          const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          crc.update(b);
          n += b.length;
          yield b;
        }
      }
      if (n !== e.size) {
        throw new LayerError(`file size changed: tar-split says ${e.size} bytes, got ${n}`, { entry: display, code: 'LAYER_CHECKSUM' });
      }
      if (e.payload === null || !crc.digest().equals(e.payload)) {
        throw new LayerError(`file integrity checksum failed for ${JSON.stringify(display)}`, { code: 'LAYER_CHECKSUM' });
      }
    }
  }
  return Readable.from(gen(), { objectMode: false });
}
