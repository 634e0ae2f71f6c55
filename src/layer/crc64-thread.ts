/**
 * CRC-64 of large files on a second core: writing a layer hashes every byte twice, sha256 of the
 * tar (the diffID) and CRC-64 of each file (tar-split). Done one after the other they cost ≈ 1.5 s
 * per GiB on one core.
 *
 * A large file is read on this thread too, straight into a slot of the WebAssembly memory, which
 * is shared: the thread runs crc64.ts's WebAssembly on the slot and passes it to the main thread,
 * which hashes the same bytes into the sha256 and gives the slot back. The sha256 is the one stream
 * that cannot be split, so the main thread does nothing else with file data. Small files are read
 * on the main thread and sent here in batches, for their CRCs alone. The thread's code is a string
 * (eval), so it runs the same from the sources under tsx and from the CLI bundle.
 */
import { Worker } from 'node:worker_threads';
import { WASM_TABLES_END, wasmCrcMemory, wasmCrcModule } from './crc64.js';

/**
 * The worker (Go's crc64, ISO table): reads large files in order, lending each chunk to the main
 * thread until it is given back, and ends each with { id, end }; CRCs batches of small files.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { memory, layout } = workerData;
const update = new WebAssembly.Instance(workerData.module, { env: { memory } }).exports.update;
const bytes = new Uint8Array(memory.buffer);
const batchCrc = (data, crc) => {
  bytes.set(data, layout.batchAt);
  return update(layout.batchAt, data.length, crc);
};
// Large files read here, one after another: { id, fd, size, at, crc, cancelled }.
const jobs = [];
const freeSlots = Array.from({ length: layout.slots }, (_, i) => i);
const one = new Uint8Array(1);
const finish = (job, end) => {
  jobs.shift();
  parentPort.postMessage({ id: job.id, end });
};
const readInto = (job, view) => {
  let got = 0;
  while (got < view.length) {
    const n = readSync(job.fd, view, got, view.length - got, job.at + got);
    if (n === 0) break;
    got += n;
  }
  return got;
};
// Reads and CRCs chunks until every slot is with the main thread.
const pump = () => {
  while (jobs.length > 0) {
    const job = jobs[0];
    try {
      if (job.cancelled) {
        finish(job, { cancelled: true });
      } else if (job.at === job.size) {
        const grew = readSync(job.fd, one, 0, 1, job.size) !== 0;
        finish(job, grew ? { grew: true } : { crc: BigInt.asUintN(64, job.crc) ^ 0xffffffffffffffffn });
      } else {
        const slot = freeSlots.pop();
        if (slot === undefined) return;
        const at = layout.slotsAt + slot * layout.slotSize;
        const view = new Uint8Array(memory.buffer, at, Math.min(layout.slotSize, job.size - job.at));
        let got;
        try {
          got = readInto(job, view);
        } catch (e) {
          freeSlots.push(slot);
          throw e;
        }
        if (got < view.length) {
          freeSlots.push(slot);
          finish(job, { missing: job.size - job.at - got });
          continue;
        }
        job.crc = update(at, got, job.crc);
        job.at += got;
        parentPort.postMessage({ id: job.id, slot, length: got });
      }
    } catch (e) {
      finish(job, { error: String((e && e.message) || e) });
    }
  }
};
parentPort.on('message', (m) => {
  if (m.give !== undefined) {
    freeSlots.push(m.give);
    pump();
    return;
  }
  if (m.read !== undefined) {
    jobs.push({ id: m.read, fd: m.fd, size: m.size, at: 0, crc: -1n, cancelled: false });
    pump();
    return;
  }
  if (m.cancel !== undefined) {
    const job = jobs.find((j) => j.id === m.cancel);
    if (job) job.cancelled = true;
    pump();
    return;
  }
  if (m.batch !== undefined) {
    // Whole small files packed one after another: [id, length] pairs in m.files.
    const data = new Uint8Array(m.batch, 0, m.length);
    const crcs = [];
    for (let i = 0, at = 0; i < m.files.length; i += 2) {
      const n = m.files[i + 1];
      crcs.push(m.files[i], BigInt.asUintN(64, batchCrc(data.subarray(at, at + n), -1n)) ^ 0xffffffffffffffffn);
      at += n;
    }
    parentPort.postMessage({ consumed: m.length, buffer: m.batch, crcs }, [m.batch]);
    return;
  }
});
`;

/**
 * Bytes of small files handed to the thread and not yet hashed by it: the writer waits above
 * this. Each MiB here (and in the spare buffers) is a MiB of peak RSS; 4 keeps the thread busy.
 */
const MAX_IN_FLIGHT = 4 << 20;
/** The size of the batches small files are packed in. */
export const CRC_THREAD_CHUNK = 512 << 10;
/**
 * The shared memory: the CRC tables, room for one batch, then the slots large files are read into
 * (1 MiB each; the main thread hashes a slot while the thread fills the next ones).
 */
const LAYOUT = { batchAt: WASM_TABLES_END, slotsAt: WASM_TABLES_END + CRC_THREAD_CHUNK, slotSize: 1 << 20, slots: 6 };

/** How the thread's read of a large file ended. */
export type ThreadReadEnd = { crc: Buffer } | { missing: number } | { grew: true } | { error: string } | { cancelled: true };

/** A chunk of a file in the shared memory: valid until released. */
export interface ThreadChunk {
  readonly data: Buffer;
  readonly slot: number;
}

/** A large file being read on the thread: its chunks in order, each handed back once hashed. */
export interface ThreadRead {
  /** The next chunk, or null after the last one (then `done` has settled). */
  next(): Promise<ThreadChunk | null>;
  /** Gives a chunk's slot back to the thread (it reads the next chunks into it). */
  release(chunk: ThreadChunk): void;
  /** Stops the read; chunks still coming are given back unread. */
  cancel(): void;
  /** Settles once the thread no longer uses the file descriptor (so it may be closed). */
  readonly done: Promise<ThreadReadEnd>;
}

interface ReadState {
  chunks: ThreadChunk[];
  wake: (() => void) | undefined;
  end: ThreadReadEnd | undefined;
  cancelled: boolean;
  settle(end: ThreadReadEnd): void;
  fail(e: unknown): void;
}

type ThreadMessage =
  | { consumed: number; buffer: ArrayBuffer; crcs: Array<number | bigint> }
  | { id: number; slot: number; length: number }
  | { id: number; end: { crc?: bigint; missing?: number; grew?: true; error?: string; cancelled?: true } };

export class CrcThread {
  private nextId = 0;
  private inFlight = 0;
  private readonly results = new Map<number, { resolve(crc: Buffer): void; reject(e: unknown): void }>();
  private readonly reads = new Map<number, ReadState>();
  private readonly drainWaiters: Array<() => void> = [];
  /** Batch buffers back from the thread, for the next batches. */
  private readonly spare: ArrayBuffer[] = [];
  private failure: unknown;

  private constructor(
    private readonly worker: Worker,
    private readonly memory: SharedArrayBuffer,
  ) {
    worker.unref();
    worker.on('message', (m: ThreadMessage) => {
      if ('crcs' in m) {
        for (let i = 0; i < m.crcs.length; i += 2) this.settle(m.crcs[i] as number, m.crcs[i + 1] as bigint);
        this.inFlight -= m.consumed;
        if (this.spare.length < MAX_IN_FLIGHT / CRC_THREAD_CHUNK) this.spare.push(m.buffer);
        if (this.inFlight <= MAX_IN_FLIGHT / 2) for (const w of this.drainWaiters.splice(0)) w();
      } else if ('slot' in m) {
        const r = this.reads.get(m.id);
        if (r === undefined || r.cancelled) this.give(m.slot);
        else {
          r.chunks.push({ slot: m.slot, data: Buffer.from(this.memory, LAYOUT.slotsAt + m.slot * LAYOUT.slotSize, m.length) });
          r.wake?.();
        }
      } else {
        const e = m.end;
        this.reads
          .get(m.id)
          ?.settle(e.crc !== undefined ? { crc: crcBytes(e.crc) } : e.missing !== undefined ? { missing: e.missing } : e.grew ? { grew: true } : e.error !== undefined ? { error: e.error } : { cancelled: true });
        this.reads.delete(m.id);
      }
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`CRC thread exited (${code})`)));
  }

  /** A thread, or undefined where WebAssembly or worker threads are unavailable (callers hash inline). */
  static start(): CrcThread | undefined {
    const module = wasmCrcModule();
    if (module === null) return undefined;
    try {
      const memory = wasmCrcMemory(LAYOUT.slotsAt + LAYOUT.slots * LAYOUT.slotSize);
      return new CrcThread(new Worker(THREAD_SOURCE, { eval: true, workerData: { module, memory, layout: LAYOUT } }), memory.buffer);
    } catch {
      return undefined;
    }
  }

  /**
   * Reads `size` bytes of the open file `fd` on the thread, with their CRC. The caller keeps the
   * descriptor open until `done` settles, and checks beforehand that it is the file it means.
   */
  read(fd: number, size: number): ThreadRead {
    const id = this.nextId++;
    let settle!: (end: ThreadReadEnd) => void;
    let fail!: (e: unknown) => void;
    const done = new Promise<ThreadReadEnd>((resolve, reject) => {
      settle = resolve;
      fail = reject;
    });
    // Awaited by the caller only after the chunks: a failure meanwhile is not unhandled.
    done.catch(() => undefined);
    const state: ReadState = {
      chunks: [],
      wake: undefined,
      end: undefined,
      cancelled: false,
      settle: (end) => {
        state.end = end;
        settle(end);
        state.wake?.();
      },
      fail: (e) => {
        state.end ??= { error: String(e) };
        fail(e);
        state.wake?.();
      },
    };
    if (this.failure !== undefined) state.fail(this.failure);
    else {
      this.reads.set(id, state);
      this.worker.postMessage({ read: id, fd, size });
    }
    return {
      done,
      next: async () => {
        for (;;) {
          const chunk = state.chunks.shift();
          if (chunk !== undefined) return chunk;
          if (this.failure !== undefined) throw this.failure;
          if (state.end !== undefined) return null;
          await new Promise<void>((resolve) => (state.wake = resolve));
          state.wake = undefined;
        }
      },
      release: (chunk) => this.give(chunk.slot),
      cancel: () => {
        if (state.cancelled || state.end !== undefined) return;
        state.cancelled = true;
        for (const c of state.chunks.splice(0)) this.give(c.slot);
        this.worker.postMessage({ cancel: id });
      },
    };
  }

  private give(slot: number): void {
    if (this.failure === undefined) this.worker.postMessage({ give: slot });
  }

  /** A CRC_THREAD_CHUNK-byte buffer to pack small files into. */
  private buffer(): Buffer {
    return Buffer.from(this.spare.pop() ?? new ArrayBuffer(CRC_THREAD_CHUNK));
  }

  private settle(id: number, crc: bigint): void {
    this.results.get(id)?.resolve(crcBytes(crc));
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

  private fail(e: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = e;
    for (const r of this.results.values()) r.reject(e);
    this.results.clear();
    for (const r of this.reads.values()) r.fail(e);
    this.reads.clear();
    for (const w of this.drainWaiters.splice(0)) w();
  }

  async stop(): Promise<void> {
    this.failure ??= new Error('CRC thread stopped');
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

function crcBytes(crc: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(crc, 0);
  return out;
}
