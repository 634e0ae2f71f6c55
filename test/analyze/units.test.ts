// Unit tests of the analysis pieces on hand-made layers (no root needed, except
// the whiteout/opaque part of the tar-split vs diff-dir comparison).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, linkSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diveEfficiency } from '../../src/analyze/dive.js';
import { layerChanges } from '../../src/analyze/changes.js';
import { entriesFromDiffDir, entriesFromTarSplit, type LayerEntry } from '../../src/analyze/entries.js';
import { attachDockerfile, instructionOf, type Step } from '../../src/analyze/steps.js';
import { parseBytes, parseRatio } from '../../src/analyze/options.js';
import { checkCi, type AnalysisJson } from '../../src/analyze/analyze.js';
import { writeLayer } from '../../src/layer/writer.js';

const dir = (path: string, mode = 0o755): LayerEntry => ({ path, kind: 'dir', size: 0, mode, uid: 0, gid: 0, linkname: '', crc: null });
const file = (path: string, size: number, crc = `c${size}`, mode = 0o644, uid = 0): LayerEntry => ({ path, kind: 'file', size, mode, uid, gid: uid, linkname: '', crc });
const wh = (path: string): LayerEntry => ({ path, kind: 'whiteout', size: 0, mode: 0o600, uid: 0, gid: 0, linkname: '', crc: null });
const opq = (path: string): LayerEntry => ({ path, kind: 'opaque', size: 0, mode: 0o755, uid: 0, gid: 0, linkname: '', crc: null });

test('dive: a deleted file counts its size once, the whiteout 0; efficiency = Σmin/Σcumulative', () => {
  const r = diveEfficiency([[dir('/a'), file('/a/big', 1000), file('/a/keep', 10)], [dir('/a'), wh('/a/big')]]);
  assert.equal(r.wastedBytes, 1000);
  // paths: /a/big (1000 + 0, min 0), /a/keep (10). /a is never a leaf.
  assert.equal(r.efficiency, 10 / 1010);
  assert.deepEqual(r.inefficiencies, [{ path: '/a/big', count: 2, cumulativeSize: 1000, layers: [0, 1] }]);
  assert.deepEqual(r.layerSizes, [1010, 0]);
  assert.equal(r.userSize, 0);
});

test('dive: an overwritten file counts every copy; a deleted dir counts what was under it', () => {
  const r = diveEfficiency([
    [dir('/x'), file('/x/f', 100)],
    [dir('/x'), file('/x/f', 300), dir('/d'), dir('/d/e'), file('/d/e/1', 50), file('/d/2', 70)],
    [wh('/d'), dir('/x'), file('/x/f', 300, 'same')],
  ]);
  // /x/f: 100 + 300 + 300 = 700 (min 100); /d: whiteout of a dir = 50 + 70 (the dir was never a leaf before: count 1).
  assert.equal(r.wastedBytes, 700);
  assert.equal(r.efficiency, (100 + 120 + 50 + 70) / (700 + 120 + 50 + 70));
  assert.equal(r.userSize, 420 + 300);
  assert.equal(r.wastedUserPercent, 700 / 720);
});

test('dive: opaque markers are ignored; empty dirs are 0-byte leaves', () => {
  const r = diveEfficiency([[dir('/o'), file('/o/old', 40)], [dir('/o'), opq('/o'), file('/o/new', 5)], [dir('/o/empty')]]);
  assert.equal(r.wastedBytes, 0);
  assert.equal(r.efficiency, 1);
});

test('dive: an empty image is 100% efficient', () => {
  assert.equal(diveEfficiency([]).efficiency, 1);
});

test('changes: added, modified, deleted, dead bytes, who hides what', () => {
  const c = layerChanges([
    [dir('/a'), file('/a/big', 1000), file('/a/keep', 10), dir('/d'), file('/d/x', 7)],
    [dir('/a'), file('/a/keep', 20), file('/a/new', 1)],
    [dir('/a'), wh('/a/big'), wh('/d')],
  ]);
  assert.deepEqual(
    c.layers.map((l) => [l.added, l.modified, l.deleted, l.deadBytes]),
    [
      [5, 0, 0, 1017],
      [1, 1, 0, 0],
      [0, 0, 3, 0],
    ],
  );
  assert.deepEqual(
    c.hidings.map((h) => [h.from, h.to, h.bytes]),
    [
      [0, 1, 10],
      [0, 2, 1007],
    ],
  );
  assert.equal(c.deadBytes, 1017);
  assert.deepEqual(c.status[2], ['unchanged', 'deleted', 'deleted']);
  assert.deepEqual(c.hiddenLater[0], [false, true, true, true, true]);
});

test('changes: opaque dirs and a file replacing a dir hide the lower subtree', () => {
  const c = layerChanges([[dir('/o'), file('/o/old', 40), dir('/p'), file('/p/q', 9)], [dir('/o'), opq('/o'), file('/o/new', 5), file('/p', 3)]]);
  assert.equal(c.deadBytes, 49);
  assert.equal(c.layers[1]!.deleted, 2);
});

test('changes: a chmod/chown of unchanged contents is a copy-up', () => {
  const c = layerChanges([[dir('/opt'), file('/opt/p', 4096, 'abc')], [dir('/opt'), file('/opt/p', 4096, 'abc', 0o755, 1000)], [dir('/opt'), file('/opt/p', 4096, 'other', 0o755, 1000)]]);
  assert.deepEqual(c.copyUps, [{ from: 0, to: 1, path: '/opt/p', size: 4096, change: { mode: [0o644, 0o755], owner: ['0:0', '1000:1000'] } }]);
});

test('changes: a file whose hardlink stays visible is not dead; it is once both are gone', () => {
  const link = (path: string, target: string): LayerEntry => ({ path, kind: 'hardlink', size: 0, mode: 0o755, uid: 0, gid: 0, linkname: target, crc: null });
  const c = layerChanges([[dir('/opt'), file('/opt/bb', 900), link('/opt/bb2', 'opt/bb')], [dir('/opt'), wh('/opt/bb')], [dir('/opt'), wh('/opt/bb2')]]);
  assert.equal(c.layers[0]!.deadBytes, 900);
  assert.deepEqual(
    c.hidings.map((h) => [h.from, h.to, h.bytes, h.paths[0]!.path]),
    [[0, 2, 900, '/opt/bb2']],
  );
});

test('instructions from created_by: classic, build-arg RUN, exec RUN, BuildKit', () => {
  assert.equal(instructionOf('/bin/sh -c #(nop)  LABEL name=x'), 'LABEL');
  assert.equal(instructionOf('/bin/sh -c #(nop) COPY file:abc in / '), 'COPY');
  assert.equal(instructionOf('/bin/sh -c #(nop) WORKDIR /app'), 'WORKDIR');
  assert.equal(instructionOf('|1 A=b /bin/sh -c echo $A'), 'RUN');
  assert.equal(instructionOf('/bin/sh -c echo hi'), 'RUN');
  assert.equal(instructionOf('RUN /bin/sh -c make # buildkit'), 'RUN');
  assert.equal(instructionOf('COPY app /app # buildkit'), 'COPY');
  assert.equal(instructionOf(''), '');
});

test('Dockerfile lines attach to history entries from the end; older entries are the base', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'tsbuild-an-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  const df = join(d, 'Dockerfile');
  writeFileSync(df, 'FROM busybox\nARG V=1\nLABEL a=b\nRUN echo $V > /v\nCOPY x /x\n');
  const mk = (index: number, createdBy: string, emptyLayer = false): Step => ({ index, created: '', createdBy, comment: '', emptyLayer, instruction: instructionOf(createdBy), layer: null, diffId: null, chainId: null, imageId: null, inherited: false, source: null });
  const steps = [
    mk(0, '/bin/sh -c #(nop) ADD file:1234 in / '),
    mk(1, '/bin/sh -c #(nop)  CMD ["sh"]', true),
    mk(2, '/bin/sh -c #(nop)  ARG V=1', true),
    mk(3, '/bin/sh -c #(nop)  LABEL a=b', true),
    mk(4, '|1 V=1 /bin/sh -c echo $V > /v'),
    mk(5, `/bin/sh -c #(nop) COPY file:${'a'.repeat(64)} in /x `),
  ];
  assert.equal(await attachDockerfile(steps, { path: df }), 4);
  assert.deepEqual(
    steps.map((s) => [s.source?.line ?? null, s.inherited]),
    [
      [null, true],
      [null, true],
      [2, false],
      [3, false],
      [4, false],
      [5, false],
    ],
  );
});

test('sizes and ratios for --highest-wasted-bytes and --lowest-efficiency', () => {
  assert.equal(parseBytes('20MB'), 20_000_000);
  assert.equal(parseBytes('1MiB'), 1048576);
  assert.equal(parseBytes('123'), 123);
  assert.equal(parseBytes('disabled'), undefined);
  assert.throws(() => parseBytes('lots'));
  assert.equal(parseRatio('90%'), 0.9);
  assert.equal(parseRatio('0.5'), 0.5);
  const a = { efficiency: 0.8, wastedBytes: 100, wastedUserPercent: 0.05 } as AnalysisJson;
  assert.deepEqual(
    checkCi(a, { lowestEfficiency: 0.9, highestWastedBytes: 1000, highestUserWastedPercent: 0.1 }).map((r) => r.pass),
    [false, true, true],
  );
});

test('tar-split entries equal a walk of the same directory', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'tsbuild-an-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  mkdirSync(join(d, 'etc/deep'), { recursive: true });
  writeFileSync(join(d, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  chmodSync(join(d, 'etc/passwd'), 0o600);
  writeFileSync(join(d, 'etc/empty'), '');
  const long = 'n'.repeat(120);
  writeFileSync(join(d, 'etc/deep', long), 'long name\n');
  symlinkSync('/etc/passwd', join(d, 'link'));
  linkSync(join(d, 'etc/passwd'), join(d, 'hard'));
  const root = process.getuid?.() === 0;
  if (root) {
    execFileSync('mknod', [join(d, 'gone'), 'c', '0', '0']);
    mkdirSync(join(d, 'opq'));
    execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(d, 'opq')]);
  }
  const { tarSplit } = await writeLayer(d);
  const fromSplit = entriesFromTarSplit(tarSplit);
  const fromDir = await entriesFromDiffDir(d);
  assert.deepEqual(fromSplit, fromDir);
  const byPath = new Map(fromSplit.map((e) => [`${e.kind}:${e.path}`, e]));
  assert.equal(byPath.get('file:/etc/passwd')?.size, 26);
  assert.equal(byPath.get('file:/etc/passwd')?.mode, 0o600);
  assert.equal(byPath.get(`file:/etc/deep/${long}`)?.size, 10);
  assert.equal(byPath.get('symlink:/link')?.linkname, '/etc/passwd');
  assert.equal(byPath.get('hardlink:/hard')?.linkname, 'etc/passwd');
  if (root) {
    assert.ok(byPath.has('whiteout:/gone'));
    assert.ok(byPath.has('opaque:/opq'));
  }
});
