/**
 * SIGINT/SIGTERM during a RUN: tsbuild kills the RUN's process tree, removes the
 * unfinished layer and its temp dirs, and exits 130/143; the store stays clean.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, cliEntry, mountsUnder, processesUsing, spawnCli, storeWithBusybox, unavailable } from './support.js';

for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${sig} during a RUN: the tree is killed, temp files removed, exit ${code}`, { skip: unavailable(), timeout: 120_000 }, async (t) => {
    cliEntry();
    const base = mkdtempSync(join(tmpdir(), 'tsb-sig-'));
    t.after(() => rmSync(base, { recursive: true, force: true }));
    const root = join(base, 'root');
    await storeWithBusybox(root);
    const overlayBefore = readdirSync(join(root, 'overlay2')).sort();
    const ctx = join(base, 'ctx');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM bb\nRUN echo started; sleep 1000 & sleep 1000; echo never\n');
    const { child, done } = spawnCli(['build', '--root', root, '-t', 'sig:x', '--progress', 'plain', ctx]);
    // Wait until the RUN is running.
    let out = '';
    await new Promise<void>((res) => child.stdout!.on('data', (c: Buffer) => ((out += c.toString()), out.includes('started') && res())));
    const sent = Date.now();
    child.kill(sig);
    const r = await done;
    t.diagnostic(`exited ${Date.now() - sent} ms after ${sig}`);
    assert.equal(r.code, code, r.stderr);
    assert.match(r.stderr, new RegExp(`interrupted by ${sig}`));
    assert.deepEqual(processesUsing(root), [], 'no RUN process remains');
    assert.deepEqual(mountsUnder(root), []);
    // No sweep has run since: the build itself cleaned up.
    assert.deepEqual(readdirSync(join(root, 'overlay2')).sort(), overlayBefore, 'the unfinished layer dir is gone');
    assert.deepEqual(readdirSync(join(root, 'tsbuild-tmp')), [], 'its temp dirs are gone');
    const check = await cli(['fsck', '--root', root]);
    assert.equal(check.code, 0, check.stdout);
  });
}
