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

/** Streaming CRC-64/ISO. */
export class Crc64 {
  // The running register, already xored with the initial all-ones value.
  private hi = 0xffffffff;
  private lo = 0xffffffff;

  update(data: Uint8Array): this {
    let hi = this.hi;
    let lo = this.lo;
    for (let i = 0; i < data.length; i++) {
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
