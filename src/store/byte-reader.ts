/** Exact-length reads from a byte stream, for walking tar archives without buffering whole files. */
import type { Readable } from 'node:stream';

export class ByteReader {
  private buffered: Buffer[] = [];
  private length = 0;
  private readonly chunks: AsyncIterator<Buffer>;
  private ended = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(stream: Readable | NodeJS.ReadableStream) {
    this.chunks = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<void> {
    while (this.length < n && !this.ended) {
      const next = await this.chunks.next();
      if (next.done) this.ended = true;
      else {
        const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
        this.buffered.push(chunk);
        this.length += chunk.length;
      }
    }
  }

  private take(n: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    this.position += out.length;
    return out;
  }

  /** Up to n bytes (fewer only at the end of the stream). */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    return this.take(Math.min(n, this.length));
  }

  /** Streams exactly n bytes to `sink` chunk by chunk; returns how many there were. */
  async pipe(n: number, sink: (chunk: Buffer) => Promise<void> | void): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.length === 0) await this.fill(1);
      if (this.length === 0) break;
      const chunk = this.take(Math.min(left, this.length));
      await sink(chunk);
      left -= chunk.length;
    }
    return n - left;
  }

  /** Reads to the end; returns the number of bytes skipped. */
  async drain(): Promise<number> {
    let n = 0;
    for (;;) {
      await this.fill(1);
      if (this.length === 0) return n;
      n += this.take(this.length).length;
    }
  }
}
