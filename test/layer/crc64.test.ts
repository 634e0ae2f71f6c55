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
