/**
 * CRC-64 of large files on a second core: writing a layer hashes every byte twice, sha256 of the
 * tar (the diffID) and CRC-64 of each file (tar-split). Done one after the other they cost ≈ 1.5 s
 * per GiB on one core; with the CRC on this worker thread, about as long as the sha256 alone.
 *
 * The main thread reads a chunk, hashes it, then hands its memory over (transfer, no copy); the
 * thread runs crc64.ts's WebAssembly on it. Chunks in flight are bounded. The thread's code is a
 * string (eval), so it runs the same from the sources under tsx and from the CLI bundle.
 */
import { Worker } from 'node:worker_threads';
import { wasmCrcParts } from './crc64.js';

/** The worker: per file id, the running CRC register (Go's crc64, ISO table); replies at each file's end. */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const instance = new WebAssembly.Instance(workerData.module, {});
const memory = instance.exports.memory.buffer;
new Uint32Array(memory, 0, workerData.tables.length).set(workerData.tables);
const bytes = new Uint8Array(memory);
const update = instance.exports.update;
const registers = new Map();
const crcOf = (data, crc) => {
  for (let off = 0; off < data.length; off += workerData.chunk) {
    const part = data.subarray(off, Math.min(data.length, off + workerData.chunk));
    bytes.set(part, workerData.dataOffset);
    crc = update(part.length, crc);
  }
  return crc;
};
parentPort.on('message', (m) => {
  if (m.batch !== undefined) {
    // Whole small files packed one after another: [id, length] pairs in m.files.
    const data = new Uint8Array(m.batch, 0, m.length);
    const crcs = [];
    for (let i = 0, at = 0; i < m.files.length; i += 2) {
      const n = m.files[i + 1];
      crcs.push(m.files[i], BigInt.asUintN(64, crcOf(data.subarray(at, at + n), -1n)) ^ 0xffffffffffffffffn);
      at += n;
    }
    parentPort.postMessage({ consumed: m.length, buffer: m.batch, crcs }, [m.batch]);
    return;
  }
  let crc = registers.get(m.id) ?? -1n;
  if (m.data !== undefined) {
    const data = new Uint8Array(m.data, 0, m.length);
    for (let off = 0; off < data.length; off += workerData.chunk) {
      const part = data.subarray(off, Math.min(data.length, off + workerData.chunk));
      bytes.set(part, workerData.dataOffset);
      crc = update(part.length, crc);
    }
    // The memory goes back for reuse (fresh pages cost a fault each).
    parentPort.postMessage({ consumed: m.length, buffer: m.data }, [m.data]);
  }
  if (m.end) {
    registers.delete(m.id);
    parentPort.postMessage({ id: m.id, crc: BigInt.asUintN(64, crc) ^ 0xffffffffffffffffn });
  } else {
    registers.set(m.id, crc);
  }
});
`;

/**
 * Bytes handed to the thread and not yet hashed by it: the reader waits above this. Each MiB
 * here (and in the spare buffers) is a MiB of peak RSS; 4 keeps the thread busy.
 */
const MAX_IN_FLIGHT = 4 << 20;
/** The size of the chunks files are read in for the thread. */
export const CRC_THREAD_CHUNK = 512 << 10;

export class CrcThread {
  private nextId = 0;
  private inFlight = 0;
  private readonly results = new Map<number, { resolve(crc: Buffer): void; reject(e: unknown): void }>();
  private readonly drainWaiters: Array<() => void> = [];
  /** Chunk buffers back from the thread, for the next reads. */
  private readonly spare: ArrayBuffer[] = [];
  private failure: unknown;

  private constructor(private readonly worker: Worker) {
    worker.unref();
    worker.on('message', (m: { consumed?: number; buffer?: ArrayBuffer; id?: number; crc?: bigint; crcs?: Array<number | bigint> }) => {
      if (m.crcs !== undefined) for (let i = 0; i < m.crcs.length; i += 2) this.settle(m.crcs[i] as number, m.crcs[i + 1] as bigint);
      if (m.consumed !== undefined) {
        this.inFlight -= m.consumed;
        if (m.buffer !== undefined && this.spare.length < MAX_IN_FLIGHT / CRC_THREAD_CHUNK) this.spare.push(m.buffer);
        if (this.inFlight <= MAX_IN_FLIGHT / 2) for (const w of this.drainWaiters.splice(0)) w();
      }
      if (m.id !== undefined && m.crc !== undefined) this.settle(m.id, m.crc);
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`CRC thread exited (${code})`)));
  }

  /** A thread, or undefined where WebAssembly or worker threads are unavailable (callers hash inline). */
  static start(): CrcThread | undefined {
    const parts = wasmCrcParts();
    if (parts === null) return undefined;
    try {
      return new CrcThread(new Worker(THREAD_SOURCE, { eval: true, workerData: parts }));
    } catch {
      return undefined;
    }
  }

  /** A CRC_THREAD_CHUNK-byte buffer to read a chunk into and pass to add(). */
  buffer(): Buffer {
    return Buffer.from(this.spare.pop() ?? new ArrayBuffer(CRC_THREAD_CHUNK));
  }

  /** A new file's CRC: feed its chunks in order with add(), then end() gives the 8-byte big-endian sum. */
  file(): { buffer(): Buffer; add(chunk: Buffer): Promise<void>; end(): Promise<Buffer> } {
    const id = this.nextId++;
    return {
      buffer: () => this.buffer(),
      add: (chunk) => this.add(id, chunk),
      end: () => {
        if (this.failure !== undefined) return Promise.reject(this.failure);
        const result = new Promise<Buffer>((resolve, reject) => this.results.set(id, { resolve, reject }));
        this.worker.postMessage({ id, end: true });
        return result;
      },
    };
  }

  private settle(id: number, crc: bigint): void {
    const out = Buffer.alloc(8);
    out.writeBigUInt64BE(crc, 0);
    this.results.get(id)?.resolve(out);
    this.results.delete(id);
  }

  /** The batch being filled with small files, and their [id, length] pairs. */
  private batch: { buf: Buffer; used: number; files: number[] } | undefined;

  /**
   * The CRC of a whole file of at most CRC_THREAD_CHUNK bytes. Its bytes are copied (the caller
   * may reuse `data` at once) into a batch of small files, sent when full or at flush(): one
   * message per batch, not two per file.
   */
  small(data: Buffer): Promise<Buffer> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (data.length > CRC_THREAD_CHUNK) throw new Error('internal: not a small file');
    if (this.batch !== undefined && this.batch.used + data.length > CRC_THREAD_CHUNK) this.flush();
    const b = (this.batch ??= { buf: this.buffer(), used: 0, files: [] });
    data.copy(b.buf, b.used);
    b.used += data.length;
    const id = this.nextId++;
    b.files.push(id, data.length);
    return new Promise<Buffer>((resolve, reject) => this.results.set(id, { resolve, reject }));
  }

  /** Sends the pending batch of small files. */
  flush(): void {
    const b = this.batch;
    this.batch = undefined;
    if (b === undefined || this.failure !== undefined) return;
    const ab = b.buf.buffer as ArrayBuffer;
    this.inFlight += b.used;
    this.worker.postMessage({ batch: ab, length: b.used, files: b.files }, [ab]);
  }

  /** Waits while more than the bound of bytes is with the thread. */
  async drain(): Promise<void> {
    if (this.inFlight > MAX_IN_FLIGHT) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  /** `chunk` must start a buffer() buffer: all of that memory is moved to the thread. */
  private async add(id: number, chunk: Buffer): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const ab = chunk.buffer as ArrayBuffer;
    if (chunk.byteOffset !== 0) throw new Error('internal: a CRC chunk must start its buffer');
    this.inFlight += chunk.length;
    this.worker.postMessage({ id, data: ab, length: chunk.length }, [ab]);
    if (this.inFlight > MAX_IN_FLIGHT) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private fail(e: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = e;
    for (const r of this.results.values()) r.reject(e);
    this.results.clear();
    for (const w of this.drainWaiters.splice(0)) w();
  }

  async stop(): Promise<void> {
    this.failure ??= new Error('CRC thread stopped');
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}
