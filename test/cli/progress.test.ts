// Build progress with stages running at the same time: plain lines labelled per stage, and
// the tty view's one block per running stage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelLines, plainProgress, ttyProgress } from '../../src/cli/progress.js';
import type { ImageId } from '../../src/image/digest.js';

const ID = `sha256:${'ab'.repeat(32)}` as ImageId;

test('plain: a stage sink labels whole lines only, whatever the output chunks', () => {
  let out = '';
  const root = plainProgress((s) => void (out += s), () => undefined);
  const a = root.stage!({ index: 0, name: 'a' });
  const b = root.stage!({ index: 1, name: 'stage-1' });
  a.step(2, 3, 'RUN make');
  a.output(Buffer.from('hal'), 'stdout');
  b.output(Buffer.from('other\n'), 'stdout');
  a.output(Buffer.from('f line\nnext\n'), 'stdout');
  a.committed(ID);
  assert.equal(out, '[a] Step 2/3 : RUN make\n[stage-1] other\n[a] half line\n[a] next\n[a]  ---> abababababab\n');
  let plain = '';
  const x = labelLines((s) => void (plain += s), '> ');
  x('one\ntw');
  x('o\n');
  assert.equal(plain, '> one\n> two\n');
});

test('tty: one live block per running stage; finished steps stay as lines', async () => {
  let written = '';
  const stream = { columns: 80, write: (s: string) => ((written += s), true) } as unknown as NodeJS.WriteStream;
  const root = await ttyProgress(stream, () => undefined);
  const a = root.stage!({ index: 0, name: 'a' });
  const b = root.stage!({ index: 1, name: 'b' });
  a.step(1, 2, 'FROM busybox AS a');
  b.step(1, 2, 'FROM busybox AS b');
  a.committed(ID);
  a.step(2, 2, 'RUN sleep 1');
  a.output(Buffer.from('working\n'), 'stdout');
  b.step(2, 2, 'RUN false');
  a.finished!();
  // The final redraw holds only b's block: a's lines are permanent above it.
  const last = written.slice(written.lastIndexOf('\x1b[J') + 3);
  assert.match(last, /^✔ \[a 2\/2\] RUN sleep 1 {2}\d+\.\ds\n. \[b 2\/2\] RUN false {2}\d+\.\ds\n$/);
  assert.match(written, /✔ \[a 1\/2\] FROM busybox AS a {2}---> abababababab {2}\d+\.\ds\n/);
  assert.match(written, /✔ \[b 1\/2\] FROM busybox AS b/);
  root.failed!();
  assert.match(written.slice(written.lastIndexOf('\x1b[J')), /✖ \[b 2\/2\] RUN false/);
});
