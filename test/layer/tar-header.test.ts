import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goClean } from '../../src/layer/bytes.js';
import {
  decodeHeaderBlock,
  encodeHeader,
  formatPaxRecord,
  parseNumeric,
  parsePaxRecords,
  splitUstarPath,
  type TarHeader,
} from '../../src/layer/tar-header.js';

const base: TarHeader = {
  typeflag: '0',
  name: 'hello.txt',
  linkname: '',
  mode: 0o100644,
  uid: 0,
  gid: 0,
  size: 6,
  mtime: 1700000000,
  uname: 'root',
  gname: 'root',
  devmajor: 0,
  devminor: 0,
};

const field = (b: Buffer, off: number, len: number): string => b.toString('latin1', off, off + len);

test('a plain entry is one USTAR block with Go-formatted fields', () => {
  const b = encodeHeader(base);
  assert.equal(b.length, 512);
  assert.equal(field(b, 100, 8), '0100644\0');
  assert.equal(field(b, 108, 8), '0000000\0');
  assert.equal(field(b, 124, 12), '00000000006\0');
  assert.equal(field(b, 136, 12), `${(1700000000).toString(8)}\0`);
  assert.match(field(b, 148, 8), /^[0-7]{6}\0 $/);
  assert.equal(field(b, 257, 8), 'ustar\x0000');
  assert.equal(field(b, 265, 5), 'root\0');
  assert.equal(field(b, 329, 16), '0000000\x000000000\0'); // devmajor/devminor always written
  const h = decodeHeaderBlock(b);
  assert.deepEqual({ ...h, format: undefined }, { ...base, format: undefined });
});

test('names over 100 bytes use the USTAR prefix when they split', () => {
  const name = `${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(40)}`;
  assert.deepEqual(splitUstarPath(name), [`${'a'.repeat(60)}/${'b'.repeat(60)}`, 'c'.repeat(40)]);
  const b = encodeHeader({ ...base, name });
  assert.equal(b.length, 512);
  assert.equal(decodeHeaderBlock(b).name, name);
  // A base name over 100 bytes cannot split: PAX.
  const long = `x/${'y'.repeat(101)}`;
  assert.equal(splitUstarPath(long), undefined);
  const pb = encodeHeader({ ...base, name: long });
  assert.equal(pb.length, 512 * 3);
  assert.equal(pb[156], 'x'.charCodeAt(0));
  assert.equal(field(pb, 0, 24), 'x/PaxHeaders.0/yyyyyyyyy');
  assert.deepEqual(parsePaxRecords(pb.subarray(512, 512 + parseNumeric(pb.subarray(124, 136)))), new Map([['path', long]]));
});

test('non-ASCII names, long link targets and big ids need PAX; records sorted by key', () => {
  const name = Buffer.from('héllo', 'utf8').toString('latin1');
  const b = encodeHeader({ ...base, name, linkname: 'l'.repeat(101), typeflag: '2', size: 0, uid: 0o10000000 });
  const size = parseNumeric(b.subarray(124, 136));
  const recs = b.subarray(512, 512 + size).toString('latin1');
  assert.equal(recs, `${formatPaxRecord('linkpath', 'l'.repeat(101))}${formatPaxRecord('path', name)}${formatPaxRecord('uid', String(0o10000000))}`);
  const main = b.subarray(1024, 1536);
  assert.equal(field(main, 0, 6), 'hllo\0\0'); // non-ASCII bytes dropped in the main header
  assert.equal(field(main, 108, 8), '0000000\0'); // uid that does not fit is written as 0
  assert.equal(field(main, 257, 8), 'ustar\x0000');
});

test('PAX record length counts its own digits', () => {
  assert.equal(formatPaxRecord('path', 'x'), '9 path=x\n');
  const r = formatPaxRecord('path', 'x'.repeat(91)); // 98 → 100 → 101
  assert.equal(r.length, 101);
  assert.ok(r.startsWith('101 path='));
});

test('xattrs go into SCHILY.xattr records', () => {
  const b = encodeHeader({ ...base, xattrs: new Map([['security.capability', '\x01\x00\x00\x02']]) });
  assert.equal(b.length, 512 * 3);
  const recs = parsePaxRecords(b.subarray(512, 512 + parseNumeric(b.subarray(124, 136))));
  assert.deepEqual(recs, new Map([['SCHILY.xattr.security.capability', '\x01\x00\x00\x02']]));
});

test('base-256 numbers and bad checksums', () => {
  const f = Buffer.alloc(8);
  f[0] = 0x80;
  f.writeUInt32BE(0x12345678, 4);
  assert.equal(parseNumeric(f), 0x12345678);
  assert.equal(parseNumeric(Buffer.from(' 0755 \0\0')), 0o755);
  const b = encodeHeader(base);
  b[0] = 'j'.charCodeAt(0);
  assert.throws(() => decodeHeaderBlock(b), /checksum/);
});

test('goClean matches Go path.Clean', () => {
  const cases: Array<[string, string]> = [
    ['', '.'],
    ['a/b/..', 'a'],
    ['/a/..', '/'],
    ['a/../..', '..'],
    ['../x', '../x'],
    ['/../x', '/x'],
    ['./a//b/./c/', 'a/b/c'],
    ['a/..', '.'],
    ['a/b', 'a/b'],
    ['/a/b', '/a/b'],
    ['.', '.'],
    ['/', '/'],
    ['..', '..'],
    ['...', '...'],
    ['a/.b/c..', 'a/.b/c..'],
    ['//', '/'],
    ['a/', 'a'],
    ['/a/.', '/a'],
    ['./a', 'a'],
  ];
  for (const [i, o] of cases) assert.equal(goClean(i), o, i);
  // Against a plain split-and-fold reference (clean paths take a fast path): every string of up
  // to 7 characters over "a./".
  const reference = (p: string): string => {
    const rooted = p.startsWith('/');
    const parts: string[] = [];
    for (const c of p.split('/')) {
      if (c === '' || c === '.') continue;
      if (c !== '..') parts.push(c);
      else if (parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
      else if (!rooted) parts.push('..');
    }
    const out = (rooted ? '/' : '') + parts.join('/');
    return out === '' ? '.' : out;
  };
  const all = (n: number): string[] => (n === 0 ? [''] : all(n - 1).flatMap((p) => [p + 'a', p + '.', p + '/']));
  for (let n = 0; n <= 7; n++) for (const p of all(n)) assert.equal(goClean(p), reference(p), JSON.stringify(p));
});
