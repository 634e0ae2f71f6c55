import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Crc64, crc64 } from '../../src/layer/crc64.js';

test('CRC-64/ISO of "hello\\n" is the documented tar-split payload', () => {
  assert.equal(crc64(Buffer.from('hello\n')).toString('base64'), 'YUw+7uLYEAA=');
});

test('CRC-64/ISO check value and empty input (as Go hash/crc64 with crc64.ISO)', () => {
  // Go: crc64.Checksum([]byte("123456789"), crc64.MakeTable(crc64.ISO)) == 0xb90956c775a41001
  assert.equal(crc64(Buffer.from('123456789')).toString('hex'), 'b90956c775a41001');
  assert.equal(crc64(Buffer.alloc(0)).toString('hex'), '0000000000000000');
  assert.equal(new Crc64().update(Buffer.from('123456789')).value(), 0xb90956c775a41001n);
});

test('streaming updates equal one shot, whatever the split', () => {
  const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7 + 3) & 0xff));
  const whole = crc64(data).toString('hex');
  for (const cut of [0, 1, 7, 512, 2999, 3000]) {
    const c = new Crc64().update(data.subarray(0, cut)).update(data.subarray(cut));
    assert.equal(c.digest().toString('hex'), whole, `cut at ${cut}`);
  }
});

test('the WebAssembly (slicing-by-16) and JS (slicing-by-8) paths agree with a bitwise reference at every length class', () => {
  // Bit-at-a-time CRC-64/ISO, straight from the definition.
  const reference = (data: Uint8Array): string => {
    let crc = 0xffffffffffffffffn;
    for (const b of data) {
      crc ^= BigInt(b);
      for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ 0xd800000000000000n : crc >> 1n;
    }
    return (crc ^ 0xffffffffffffffffn).toString(16).padStart(16, '0');
  };
  let x = 12345;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff));
  for (const n of [1, 7, 8, 9, 15, 16, 17, 31, 33, 255, 256, 257, 4099]) {
    const d = bytes(n);
    const want = reference(d);
    assert.equal(new Crc64().update(d).digest().toString('hex'), want, `update, ${n} bytes`);
    assert.equal(new Crc64().updateJs(d).digest().toString('hex'), want, `updateJs, ${n} bytes`);
  }
  // Larger than the WebAssembly buffer: chunked, and mixed with JS-sized pieces.
  const big = bytes(1_200_000);
  const whole = new Crc64().updateJs(big).digest().toString('hex');
  assert.equal(new Crc64().update(big).digest().toString('hex'), whole);
  assert.equal(new Crc64().update(big.subarray(0, 100)).update(big.subarray(100, 700_000)).update(big.subarray(700_000)).digest().toString('hex'), whole);
});
