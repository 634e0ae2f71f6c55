/**
 * CRC-64/ISO as Go's hash/crc64 with crc64.ISO computes it (tar-split's file checksums): reflected
 * polynomial 0xD800000000000000, initial value and final xor all ones. The 64-bit state is kept as two
 * unsigned 32-bit halves so the inner loop stays in small integers.
 *
 * Check value: "hello\n" → bytes 61 4c 3e ee e2 d8 10 00 (base64 `YUw+7uLYEAA=`).
 */

const POLY_HI = 0xd8000000;
const POLY_LO = 0x00000000;

const TABLE_HI = new Uint32Array(256);
const TABLE_LO = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let k = 0; k < 8; k++) {
    const lsb = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (lsb) {
      hi = (hi ^ POLY_HI) >>> 0;
      lo = (lo ^ POLY_LO) >>> 0;
    }
  }
  TABLE_HI[i] = hi;
  TABLE_LO[i] = lo;
}

/**
 * Slicing tables, interleaved lo/hi: SLICE[(k * 256 + i) * 2] is the low half of table k's entry
 * i (the CRC of byte i followed by k zero bytes), +1 the high half. The JS loop slices by 8 (tables
 * 0–7), the WebAssembly by 16. Built on first use: most starts hash no layer.
 */
let SLICE: Uint32Array | undefined;
function sliceTables(): Uint32Array {
  if (SLICE !== undefined) return SLICE;
  const t = new Uint32Array(16 * 256 * 2);
  for (let i = 0; i < 256; i++) {
    t[i * 2] = TABLE_LO[i] as number;
    t[i * 2 + 1] = TABLE_HI[i] as number;
  }
  for (let k = 1; k < 16; k++) {
    for (let i = 0; i < 256; i++) {
      const plo = t[((k - 1) * 256 + i) * 2] as number;
      const phi = t[((k - 1) * 256 + i) * 2 + 1] as number;
      const idx = plo & 0xff;
      t[(k * 256 + i) * 2] = (((plo >>> 8) | ((phi & 0xff) << 24)) ^ (TABLE_LO[idx] as number)) >>> 0;
      t[(k * 256 + i) * 2 + 1] = ((phi >>> 8) ^ (TABLE_HI[idx] as number)) >>> 0;
    }
  }
  return (SLICE = t);
}

/**
 * Slicing-by-16 in WebAssembly (native 64-bit words: several times the JS speed, which made the
 * CRC the slowest part of writing a layer). crc64.wat is its source:
 * `wat2wasm --enable-threads src/layer/crc64.wat -o /dev/stdout | base64 -w0` (Debian package wabt).
 * Its memory is imported and shared, so a CRC thread (crc64-thread.ts) can read file data straight
 * into it and the main thread hash the same bytes there.
 */
const WASM_BASE64 = 'AGFzbQEAAAABCAFgA39/fgF+AhIBA2VudgZtZW1vcnkCAwGAgAQDAgEABwoBBnVwZGF0ZQAACo4DAYsDAgJ/An4gACABaiEEIAQgAUEPcWshAwJAA0AgACADTw0BIAIgACkDAIUhBSAAKQMIIQYgBUL/AYOnQQN0KQOA8AEgBUIIiEL/AYOnQQN0KQOA4AGFIAVCEIhC/wGDp0EDdCkDgNABhSAFQhiIQv8Bg6dBA3QpA4DAAYUgBUIgiEL/AYOnQQN0KQOAsAGFIAVCKIhC/wGDp0EDdCkDgKABhSAFQjCIQv8Bg6dBA3QpA4CQAYUgBUI4iKdBA3QpA4CAAYUgBkL/AYOnQQN0KQOAcIUgBkIIiEL/AYOnQQN0KQOAYIUgBkIQiEL/AYOnQQN0KQOAUIUgBkIYiEL/AYOnQQN0KQOAQIUgBkIgiEL/AYOnQQN0KQOAMIUgBkIoiEL/AYOnQQN0KQOAIIUgBkIwiEL/AYOnQQN0KQOAEIUgBkI4iKdBA3QpAwCFIQIgAEEQaiEADAALCwJAA0AgACAETw0BIAIgADEAAIVC/wGDp0EDdCkDACACQgiIhSECIABBAWohAAwACwsgAgs=';
/** Where data may start in the memory: after the 16 tables. */
export const WASM_TABLES_END = 16 * 256 * 8;
const WASM_PAGE = 65536;
/** This process's own memory for Crc64: the tables, then one chunk of data. */
const WASM_PAGES = 17;
const WASM_CHUNK = WASM_PAGES * WASM_PAGE - WASM_TABLES_END;
/** Below this many bytes the JS loop is cheaper than the call and the copy. */
const WASM_MIN = 256;

interface WasmCrc {
  bytes: Uint8Array;
  update(at: number, len: number, crc: bigint): bigint;
}

let wasm: WasmCrc | null | undefined;

// The few WebAssembly globals used (the project's lib has no DOM/WebAssembly typings).
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer };
};

/** A shared memory of `bytes` (rounded up to pages) with the tables in place, for an instance of the module. */
export function wasmCrcMemory(bytes: number): { buffer: SharedArrayBuffer } {
  const pages = Math.ceil(bytes / WASM_PAGE);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const tables = sliceTables();
  new Uint32Array(memory.buffer, 0, tables.length).set(tables);
  return memory;
}

/**
 * The compiled module, for a CRC thread (crc64-thread.ts) to instantiate with a wasmCrcMemory as
 * `env.memory`: update(at, len, crc) CRCs len bytes at offset at. Null without WebAssembly.
 */
export function wasmCrcModule(): object | null {
  return wasmCrc() === null ? null : wasmModule!;
}

let wasmModule: object | undefined;

function wasmCrc(): WasmCrc | null {
  if (wasm !== undefined) return wasm;
  try {
    const mod = new WebAssembly.Module(Buffer.from(WASM_BASE64, 'base64'));
    const memory = wasmCrcMemory(WASM_PAGES * WASM_PAGE);
    const inst = new WebAssembly.Instance(mod, { env: { memory } });
    wasmModule = mod;
    const update = inst.exports['update'] as (at: number, len: number, crc: bigint) => bigint;
    wasm = { bytes: new Uint8Array(memory.buffer), update };
  } catch {
    wasm = null; // no WebAssembly (or no shared memory) here: the JS loop does it all
  }
  return wasm;
}

/** Streaming CRC-64/ISO. */
export class Crc64 {
  // The running register, already xored with the initial all-ones value.
  private hi = 0xffffffff;
  private lo = 0xffffffff;

  update(data: Uint8Array): this {
    const w = data.length >= WASM_MIN ? wasmCrc() : null;
    if (w !== null) {
      let crc = BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo));
      for (let off = 0; off < data.length; off += WASM_CHUNK) {
        const part = data.subarray(off, Math.min(data.length, off + WASM_CHUNK));
        w.bytes.set(part, WASM_TABLES_END);
        crc = w.update(WASM_TABLES_END, part.length, crc);
      }
      const u = BigInt.asUintN(64, crc);
      this.hi = Number(u >> 32n);
      this.lo = Number(u & 0xffffffffn);
      return this;
    }
    return this.updateJs(data);
  }

  /** The JS slicing-by-8 (short inputs, or no WebAssembly). */
  updateJs(data: Uint8Array): this {
    let hi = this.hi;
    let lo = this.lo;
    const T = sliceTables();
    const n = data.length;
    const end8 = n - (n & 7);
    let i = 0;
    // Eight bytes a round: the register xored with the next word, each byte through its own table.
    for (; i < end8; i += 8) {
      const a = (lo ^ ((data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24))) >>> 0;
      const b = (hi ^ ((data[i + 4] as number) | ((data[i + 5] as number) << 8) | ((data[i + 6] as number) << 16) | ((data[i + 7] as number) << 24))) >>> 0;
      const t7 = (0x700 + (a & 0xff)) << 1;
      const t6 = (0x600 + ((a >>> 8) & 0xff)) << 1;
      const t5 = (0x500 + ((a >>> 16) & 0xff)) << 1;
      const t4 = (0x400 + (a >>> 24)) << 1;
      const t3 = (0x300 + (b & 0xff)) << 1;
      const t2 = (0x200 + ((b >>> 8) & 0xff)) << 1;
      const t1 = (0x100 + ((b >>> 16) & 0xff)) << 1;
      const t0 = (b >>> 24) << 1;
      lo = ((T[t7] as number) ^ (T[t6] as number) ^ (T[t5] as number) ^ (T[t4] as number) ^ (T[t3] as number) ^ (T[t2] as number) ^ (T[t1] as number) ^ (T[t0] as number)) >>> 0;
      hi = ((T[t7 + 1] as number) ^ (T[t6 + 1] as number) ^ (T[t5 + 1] as number) ^ (T[t4 + 1] as number) ^ (T[t3 + 1] as number) ^ (T[t2 + 1] as number) ^ (T[t1 + 1] as number) ^ (T[t0 + 1] as number)) >>> 0;
    }
    for (; i < n; i++) {
      const idx = (lo ^ (data[i] as number)) & 0xff;
      const nlo = (lo >>> 8) | ((hi & 0xff) << 24);
      const nhi = hi >>> 8;
      lo = (nlo ^ (TABLE_LO[idx] as number)) >>> 0;
      hi = (nhi ^ (TABLE_HI[idx] as number)) >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
    return this;
  }

  /** The 8-byte big-endian sum (what Go's hash.Hash64.Sum appends). Does not reset the state. */
  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32BE((this.hi ^ 0xffffffff) >>> 0, 0);
    out.writeUInt32BE((this.lo ^ 0xffffffff) >>> 0, 4);
    return out;
  }

  /** The sum as an unsigned 64-bit integer. */
  value(): bigint {
    return this.digest().readBigUInt64BE(0);
  }
}

/** One-shot CRC-64/ISO of `data`, 8 bytes big-endian. */
export function crc64(data: Uint8Array): Buffer {
  return new Crc64().update(data).digest();
}
