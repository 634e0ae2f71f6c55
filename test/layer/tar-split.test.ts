import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { utf8ToBStr } from '../../src/layer/bytes.js';
import { LayerError } from '../../src/layer/errors.js';
import { splitTar } from '../../src/layer/reader.js';
import { formatPaxRecord } from '../../src/layer/tar-header.js';
import {
  assembleTar,
  encodeTarSplitEntry,
  goJsonString,
  readTarSplit,
  tarSplitLines,
  TarSplitWriter,
} from '../../src/layer/tar-split.js';
import { octal, rawBlock, tarOf } from './tar-build.js';

async function collect(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
}

const HELLO_TAR = (): Buffer =>
  tarOf([{ h: { name: 'a/', typeflag: '5' } }, { h: { name: 'hello.txt' }, data: 'hello\n' }]);

test('a small known tar gives the documented tar-split lines (STORE-FORMAT §3)', async () => {
  const tar = HELLO_TAR();
  const { tarSplit, diffId, tarSize } = await splitTar(Readable.from([tar]));
  assert.equal(tarSize, tar.length);
  assert.equal(diffId, `sha256:${(await import('node:crypto')).createHash('sha256').update(tar).digest('hex')}`);
  const b64 = (b: Buffer): string => b.toString('base64');
  assert.deepEqual(tarSplitLines(tarSplit), [
    `{"type":2,"payload":"${b64(tar.subarray(0, 512))}","position":0}`,
    '{"type":1,"name":"a/","payload":null,"position":1}',
    `{"type":2,"payload":"${b64(tar.subarray(512, 1024))}","position":2}`,
    // Verbatim from STORE-FORMAT.md §3:
    '{"type":1,"name":"hello.txt","size":6,"payload":"YUw+7uLYEAA=","position":3}',
    `{"type":2,"payload":"${b64(Buffer.alloc(506 + 1024))}","position":4}`,
    '{"type":2,"payload":"","position":5}',
  ]);
});

test('JSON strings are escaped like Go encoding/json (HTML-safe)', () => {
  assert.equal(goJsonString('a<b>&c"d\\e\nf\tg\rh\u0001\u007f\u2028\u2029é'), '"a\\u003cb\\u003e\\u0026c\\"d\\\\e\\nf\\tg\\rh\\u0001\u007f\\u2028\\u2029é"');
  assert.equal(
    encodeTarSplitEntry({ type: 1, name: utf8ToBStr('x<&>.txt'), size: 0, payload: null, position: 7 }),
    '{"type":1,"name":"x\\u003c\\u0026\\u003e.txt","payload":null,"position":7}',
  );
  // Non-UTF-8 names go to name_raw.
  assert.equal(
    encodeTarSplitEntry({ type: 1, name: 'bad\xff', size: 3, payload: Buffer.alloc(8), position: 1 }),
    '{"type":1,"name_raw":"YmFk/w==","size":3,"payload":"AAAAAAAAAAA=","position":1}',
  );
});

test('tar-split reads back and reassembles the tar, checking CRCs', async () => {
  const tar = HELLO_TAR();
  const { tarSplit } = await splitTar(Readable.from([tar]));
  const entries = readTarSplit(tarSplit);
  assert.equal(entries.length, 6);
  const files = new Map([['hello.txt', Buffer.from('hello\n')]]);
  const asm = await collect(assembleTar(tarSplit, (name) => files.get(name) ?? Buffer.alloc(0)));
  assert.ok(asm.equals(tar));
  const streamed = await collect(assembleTar(entries, () => Readable.from([Buffer.from('hel'), Buffer.from('lo\n')])));
  assert.ok(streamed.equals(tar));
  await assert.rejects(collect(assembleTar(tarSplit, () => Buffer.from('HELLO\n'))), /file integrity checksum failed for "hello.txt"/);
  await assert.rejects(collect(assembleTar(tarSplit, () => Buffer.from('hello'))), /size changed/);
});

test('the writer refuses duplicate paths like tar-split', () => {
  const w = new TarSplitWriter();
  w.addFile('a/', 0, null);
  assert.throws(() => w.addFile('a', 0, null), (e: unknown) => e instanceof LayerError && /duplicates of file paths/.test(e.message));
});

test('gzip input: the diffID is of the uncompressed bytes', async () => {
  const tar = HELLO_TAR();
  const plain = await splitTar(Readable.from([tar]));
  const gz = await splitTar(Readable.from([gzipSync(tar)]));
  assert.equal(gz.diffId, plain.diffId);
  assert.deepEqual(tarSplitLines(gz.tarSplit), tarSplitLines(plain.tarSplit));
});

test('PAX and GNU long names are recorded as read; trailing bytes become segments', async () => {
  const longName = `${'d'.repeat(120)}/file`;
  const gnuName = 'g'.repeat(130);
  const gnuData = Buffer.from(`${gnuName}\0`);
  const tar = Buffer.concat([
    tarOf([{ h: { name: longName }, data: 'x' }], { end: false }),
    // GNU long name: ././@LongLink + name + NUL, then the real header with a truncated name.
    rawBlock({ 0: '././@LongLink', 100: octal(0, 8), 124: octal(gnuData.length, 12), 136: octal(0, 12), 156: 'L' }, 'gnu'),
    gnuData,
    Buffer.alloc(512 - gnuData.length),
    rawBlock({ 0: gnuName.slice(0, 100), 100: octal(0o644, 8), 124: octal(2, 12), 136: octal(1700000000, 12), 156: '0' }, 'gnu'),
    Buffer.from('hi'),
    Buffer.alloc(510),
    Buffer.alloc(1024),
    Buffer.from('trailing junk'),
  ]);
  const { tarSplit, diffId, tarSize } = await splitTar(Readable.from([tar]));
  assert.equal(tarSize, tar.length); // trailing bytes are part of the diffID
  assert.match(diffId, /^sha256:/);
  const entries = readTarSplit(tarSplit);
  const files = entries.filter((e) => e.type === 1).map((e) => (e.type === 1 ? [e.name, e.size] : []));
  assert.deepEqual(files, [
    [longName, 1],
    [gnuName, 2],
  ]);
  const last = entries.slice(-2);
  assert.deepEqual(
    last.map((e) => e.payload?.toString()),
    ['trailing junk', ''],
  );
  const asm = await collect(assembleTar(tarSplit, (name) => Buffer.from(name === longName ? 'x' : 'hi')));
  assert.ok(asm.equals(tar));
});

test('a PAX global header is an entry of size 0 and its padding goes with the next entry', async () => {
  const recs = Buffer.from(formatPaxRecord('comment', 'hello.'), 'latin1');
  const tar = Buffer.concat([
    rawBlock({ 0: 'pax_global_header', 100: octal(0, 8), 124: octal(recs.length, 12), 136: octal(0, 12), 156: 'g' }),
    recs,
    Buffer.alloc(512 - recs.length),
    tarOf([{ h: { name: 'f' }, data: 'z' }]),
  ]);
  const lines = tarSplitLines((await splitTar(Readable.from([tar]))).tarSplit);
  assert.equal(lines[1], '{"type":1,"name":"pax_global_header","payload":null,"position":1}');
  // The global header's padding belongs to the next entry's segment, as with Go's reader.
  const seg = JSON.parse(lines[2] ?? '{}') as { payload: string };
  assert.equal(Buffer.from(seg.payload, 'base64').length, 512 - recs.length + 512);
});

test('corrupt and truncated tars are errors', async () => {
  const tar = HELLO_TAR();
  const cut = async (b: Buffer): Promise<unknown> => splitTar(Readable.from([b]));
  await assert.rejects(cut(tar.subarray(0, 1024 + 3)), /hello\.txt.*truncated|truncated.*hello/);
  await assert.rejects(cut(tar.subarray(0, 1536)), /no end-of-archive marker/);
  await assert.rejects(cut(tar.subarray(0, 1536 + 512)), /truncated/);
  await assert.rejects(cut(tar.subarray(0, 700)), /truncated/);
  const bad = Buffer.from(tar);
  bad[512 + 10] = (bad[512 + 10] as number) ^ 0x20;
  await assert.rejects(cut(bad), /checksum/);
  await assert.rejects(cut(Buffer.from('BZh91AY&SY')), /unsupported layer compression/);
  await assert.rejects(cut(gzipSync(tar).subarray(0, 40)), /gzip|truncated/);
  const dup = tarOf([{ h: { name: 'a' } }, { h: { name: './a' } }]);
  await assert.rejects(cut(dup), /duplicates of file paths not supported/);
  await assert.rejects(splitTar(Readable.from([tar]), { expectDiffId: `sha256:${'0'.repeat(64)}` as never }), /^LayerError: invalid diffID for layer: expected sha256:0{64}, got sha256:[0-9a-f]{64}$/m);
});
