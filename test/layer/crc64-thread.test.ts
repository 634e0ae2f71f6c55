import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, lstatSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrcThread, type ThreadRead, type ThreadReadEnd } from '../../src/layer/crc64-thread.js';
import { crc64 } from '../../src/layer/crc64.js';
import { ReadAhead } from '../../src/layer/read-ahead.js';

function data(n: number, seed: number): Buffer {
  let x = seed;
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return b;
}

/** Every chunk of a read, hashed as the layer writer does, and how the read ended. */
async function drain(r: ThreadRead): Promise<{ sha: string; bytes: number; end: ThreadReadEnd }> {
  const h = createHash('sha256');
  let bytes = 0;
  for (let c = await r.next(); c !== null; c = await r.next()) {
    h.update(c.data);
    bytes += c.data.length;
    r.release(c);
  }
  return { sha: h.digest('hex'), bytes, end: await r.done };
}

async function withThread(fn: (t: CrcThread, dir: string) => Promise<void>): Promise<void> {
  const t = CrcThread.start();
  assert.ok(t, 'WebAssembly and worker threads are there in Node 20');
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-crc-thread-'));
  try {
    await fn(t, dir);
  } finally {
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the CRC thread reads a large file: its chunks in order (sha256 as of the file) and its CRC', async () => {
  await withThread(async (t, dir) => {
    // More than all the slots together, and not a whole number of chunks.
    const bytes = data((9 << 20) + 12345, 7);
    writeFileSync(join(dir, 'f'), bytes);
    const fd = openSync(join(dir, 'f'), 'r');
    try {
      const got = await drain(t.read(fd, bytes.length));
      assert.equal(got.bytes, bytes.length);
      assert.equal(got.sha, createHash('sha256').update(bytes).digest('hex'));
      assert.deepEqual(got.end, { crc: crc64(bytes) });
    } finally {
      closeSync(fd);
    }
  });
});

test('a file shorter or longer than its stat said ends the read with what is wrong', async () => {
  await withThread(async (t, dir) => {
    writeFileSync(join(dir, 'f'), data(3 << 20, 1));
    const fd = openSync(join(dir, 'f'), 'r');
    try {
      assert.deepEqual((await drain(t.read(fd, (3 << 20) + 10))).end, { missing: 10 });
      assert.deepEqual((await drain(t.read(fd, (3 << 20) - 1))).end, { grew: true });
    } finally {
      closeSync(fd);
    }
  });
});

test('a cancelled read gives its slots back: the next read still gets all its chunks', async () => {
  await withThread(async (t, dir) => {
    const bytes = data(10 << 20, 3);
    writeFileSync(join(dir, 'f'), bytes);
    const fd = openSync(join(dir, 'f'), 'r');
    try {
      const first = t.read(fd, bytes.length);
      const one = await first.next();
      assert.ok(one);
      // Not released by the reader: cancel gives back what it holds and what is still coming.
      first.cancel();
      first.release(one);
      assert.deepEqual(await first.done, { cancelled: true });
      const again = await drain(t.read(fd, bytes.length));
      assert.deepEqual(again.end, { crc: crc64(bytes) });
    } finally {
      closeSync(fd);
    }
  });
});

test('read-ahead: reads are served in order; taking one not started stops the others first', async () => {
  await withThread(async (t, dir) => {
    const files = [0, 1, 2].map((i) => {
      const p = join(dir, `f${i}`);
      writeFileSync(p, data((2 << 20) + i, 10 + i));
      return Buffer.from(p);
    });
    const ra = new ReadAhead(t);
    ra.start(files[0]!, lstatSync(files[0]!, { bigint: true }));
    ra.start(files[1]!, lstatSync(files[1]!, { bigint: true }));
    assert.equal(ra.started, 2);
    const a = await ra.take(files[0]!);
    assert.ok(a);
    assert.deepEqual((await drain(a.reading)).end, { crc: crc64(data(2 << 20, 10)) });
    closeSync(a.fd);
    // f2 was never started: f1's read is stopped (and its file closed), nothing waits on it.
    assert.equal(await ra.take(files[2]!), undefined);
    assert.equal(ra.started, 0);
    const fd = openSync(files[2]!, 'r');
    try {
      assert.deepEqual((await drain(t.read(fd, (2 << 20) + 2))).end, { crc: crc64(data((2 << 20) + 2, 12)) });
    } finally {
      closeSync(fd);
    }
    // A path that is not the file its stat describes is not started.
    ra.start(files[0]!, lstatSync(files[1]!, { bigint: true }));
    assert.equal(ra.started, 0);
    await ra.stopAll();
  });
});
