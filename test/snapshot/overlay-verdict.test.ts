// A remembered overlay probe (snapshot/overlay-verdict.ts): kept only when positive, only for the
// same boot, filesystem, path, user and options; a remembered verdict skips the probe.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseSnapshotter, overlayWorks } from '../../src/snapshot/copy.js';
import { featureOptions } from '../../src/snapshot/overlay.js';
import { rememberedOverlayWorks, rememberOverlayWorks, verdictKey } from '../../src/snapshot/overlay-verdict.js';

const base = mkdtempSync(join(tmpdir(), 'tsbuild-verdict-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => {
  const d = join(base, `${n++}`, name);
  mkdirSync(d, { recursive: true });
  return d;
};

describe('overlay verdict', () => {
  test('kept for the same key only; torn, negative or foreign files do not count', async () => {
    const dir = fresh('tmp');
    const key = verdictKey(dir, 'index=off');
    assert.ok(key, 'this Linux has a boot id');
    assert.equal(key.bootId, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    const file = join(base, 'meta', 'nested', 'overlay-probe.json');
    assert.equal(rememberedOverlayWorks(file, key), false, 'nothing remembered yet');
    await rememberOverlayWorks(file, key);
    assert.equal(rememberedOverlayWorks(file, key), true);
    assert.equal(rememberedOverlayWorks(file, { ...key, bootId: 'another-boot' }), false);
    assert.equal(rememberedOverlayWorks(file, { ...key, dev: key.dev + 1 }), false);
    assert.equal(rememberedOverlayWorks(file, { ...key, under: '/moved' }), false);
    assert.equal(rememberedOverlayWorks(file, { ...key, uid: key.uid + 1 }), false);
    assert.equal(rememberedOverlayWorks(file, { ...key, options: 'index=on' }), false);
    // The same parent, another per-process scratch dir: the same key.
    const sibling = join(dir, '..', 'proc-other');
    mkdirSync(sibling);
    assert.deepEqual(verdictKey(sibling, 'index=off'), key);
    writeFileSync(file, JSON.stringify({ ...key, works: false }));
    assert.equal(rememberedOverlayWorks(file, key), false);
    writeFileSync(file, '{"bootId":');
    assert.equal(rememberedOverlayWorks(file, key), false);
    writeFileSync(file, 'null');
    assert.equal(rememberedOverlayWorks(file, key), false);
  });

  test('an unwritable place is no error', async () => {
    const dir = fresh('tmp');
    const key = verdictKey(dir, 'x');
    assert.ok(key);
    const blocker = join(base, 'a-file');
    writeFileSync(blocker, '');
    await rememberOverlayWorks(join(blocker, 'overlay-probe.json'), key);
    assert.equal(rememberedOverlayWorks(join(blocker, 'overlay-probe.json'), key), false);
  });

  test('chooseSnapshotter remembers a working overlay and then trusts it', { skip: process.getuid?.() !== 0 ? 'needs root (overlay mounts)' : undefined }, async () => {
    const dir = fresh('scratch');
    const file = join(base, 'remember', 'overlay-probe.json');
    const works = await overlayWorks(dir);
    assert.equal(await chooseSnapshotter(dir, undefined, {}, file), works ? 'overlay' : 'copy');
    assert.equal(existsSync(file), works, 'only a positive probe is written');
    // A dir overlay options cannot name probes false; a verdict remembered for it is believed
    // (which shows the probe was skipped), and without one it is probed again.
    const colon = fresh('with:colon');
    assert.equal(await chooseSnapshotter(colon, undefined, {}, join(base, 'none', 'overlay-probe.json')), 'copy');
    assert.equal(existsSync(join(base, 'none', 'overlay-probe.json')), false);
    const planted = join(base, 'planted', 'overlay-probe.json');
    await rememberOverlayWorks(planted, verdictKey(colon, featureOptions()) as NonNullable<ReturnType<typeof verdictKey>>);
    assert.equal(await chooseSnapshotter(colon, undefined, {}, planted), 'overlay');
    // An explicit choice or TSBUILD_SNAPSHOTTER still wins over a remembered verdict.
    assert.equal(await chooseSnapshotter(colon, undefined, { TSBUILD_SNAPSHOTTER: 'copy' }, planted), 'copy');
  });
});
