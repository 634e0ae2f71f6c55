/**
 * Concurrency: 8 builds of different Dockerfiles into one root at once (sharing the
 * base image, the lock, and — two pairs of them — the same layers, made at the same
 * moment), alongside tag/rmi/images/import on the same root: all succeed, every
 * tag is there, and fsck finds nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxRootfsTar } from '../support/dockerd.js';
import { cli, cliEntry, configOf, tagsOf, mountsUnder, processesUsing, storeWithBusybox, unavailable } from './support.js';

const DOCKERFILES = [
  'FROM bb\nRUN echo a > /a\nCOPY f /f\n',
  'FROM bb\nRUN echo b > /b\nWORKDIR /w\nCOPY f .\n',
  'FROM bb\nCOPY f /c\nRUN cat /c > /c2\nENV X=1\n',
  'FROM bb AS s\nRUN echo s > /s\nFROM bb\nCOPY --from=s /s /s\n',
  // Same layers as each other, at the same moment (fixed epoch: identical diffIDs and chainIDs).
  'FROM bb\nRUN echo same > /same\nLABEL n=5\n',
  'FROM bb\nRUN echo same > /same\nLABEL n=6\n',
  'FROM bb\nCOPY f /same-copy\nLABEL n=7\n',
  'FROM bb\nCOPY f /same-copy\nLABEL n=8\n',
];

test('8 concurrent builds (plus tag, rmi, import) on one root: all succeed, all tagged, fsck clean', { skip: unavailable(), timeout: 300_000 }, async (t) => {
  cliEntry();
  const base = mkdtempSync(join(tmpdir(), 'tsb-conc-'));
  const root = join(base, 'root');
  t.after(() => rmSync(base, { recursive: true, force: true }));
  await storeWithBusybox(root);
  const contexts = DOCKERFILES.map((text, i) => {
    const dir = join(base, `ctx${i}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'Dockerfile'), text);
    writeFileSync(join(dir, 'f'), i >= 6 ? 'shared\n' : `file ${i}\n`);
    return dir;
  });
  writeFileSync(join(base, 'bb.tar'), busyboxRootfsTar());

  const started = Date.now();
  const builds = contexts.map((ctx, i) => cli(['build', '--root', root, '-t', `conc${i}:v1`, '--progress', 'plain', '--source-date-epoch', '1700000000', ctx]));
  // Store commands racing the builds: tags come and go, another import of the base, listings.
  const others = (async () => {
    const out = [];
    for (let k = 0; k < 6; k++) {
      out.push(await cli(['tag', '--root', root, 'bb', `extra:${k}`]));
      out.push(await cli(['images', '--root', root]));
      if (k % 2 === 1) out.push(await cli(['rmi', '--root', root, `extra:${k - 1}`]));
    }
    out.push(await cli(['import', '--root', root, join(base, 'bb.tar'), 'bb2:latest']));
    return out;
  })();
  const results = await Promise.all(builds);
  const side = await others;
  t.diagnostic(`8 builds + ${side.length} store commands in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  results.forEach((r, i) => assert.equal(r.code, 0, `build ${i}: ${r.stderr}`));
  side.forEach((r) => assert.equal(r.code, 0, r.stderr));

  const tags = tagsOf(root);
  for (let i = 0; i < 8; i++) assert.ok(tags.has(`conc${i}:v1`), `conc${i}:v1 is tagged`);
  for (const k of [1, 3, 5]) assert.ok(tags.has(`extra:${k}`));
  for (const k of [0, 2, 4]) assert.ok(!tags.has(`extra:${k}`));
  assert.ok(tags.has('bb2:latest'));
  // The pairs built the same layers: one layer each, shared.
  const diffIds = (ref: string) => configOf(root, tags.get(ref)!).rootfs.diff_ids;
  assert.deepEqual(diffIds('conc4:v1'), diffIds('conc5:v1'));
  assert.deepEqual(diffIds('conc6:v1'), diffIds('conc7:v1'));

  const check = await cli(['fsck', '--root', root]);
  assert.equal(check.code, 0, `fsck:\n${check.stdout}${check.stderr}`);
  assert.match(check.stdout, /no problems/);
  assert.deepEqual(processesUsing(root), []);
  assert.deepEqual(mountsUnder(root), []);
});
