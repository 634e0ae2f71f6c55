/**
 * fsck finds each kind of damage, --repair removes it, and a second fsck is clean;
 * the crash sweep's rules (dead owners' leftovers go, live owners' work stays); a
 * stale lock of a dead process is taken over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hexOf, sha256Digest, type DiffId } from '../../src/image/digest.js';
import { writeLayer } from '../../src/layer/writer.js';
import { fsck } from '../../src/store/fsck.js';
import { ownerToken, withLock } from '../../src/store/lock.js';
import { ImageStore } from '../../src/store/store.js';

function tempRoot(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsb-fsck-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'root');
}

const fill = (content: string) => async (diff: string) => {
  writeFileSync(join(diff, 'file'), content);
  const w = await writeLayer(diff);
  return { diffId: w.diffId, tarSplit: w.tarSplit, size: w.size };
};

function config(diffIds: DiffId[], created = '2026-01-01T00:00:00Z'): Buffer {
  return Buffer.from(JSON.stringify({ architecture: 'amd64', config: {}, created, history: diffIds.map(() => ({ created })), os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }));
}

async function sample(root: string) {
  const store = await ImageStore.open(root);
  const l1 = await store.putLayer(null, fill('one\n'));
  const l2 = await store.putLayer(l1.chainId, fill('two\n'));
  const base = await store.putImage(config([l1.diffId]));
  const top = await store.putImage(config([l1.diffId, l2.diffId]), base);
  await store.tag('app:base', base);
  await store.tag('app:top', top);
  return { store, l1, l2, base, top };
}

test('a fresh store and a built one are clean', async (t) => {
  const { store } = await sample(tempRoot(t));
  const r = await fsck(store);
  assert.deepEqual(r.findings.map((f) => f.message), []);
  assert.equal(r.images, 2);
  assert.equal(r.layers, 2);
});

test('each kind of damage is found, repaired, and the store is clean after', async (t) => {
  const root = tempRoot(t);
  const { store, l1, l2, top } = await sample(root);
  const img = join(root, 'image/overlay2');
  // A layer whose data no longer matches its diffID (what save/push would fail on).
  writeFileSync(join(store.overlay.dirOf(l2.cacheId), 'diff', 'file'), 'tampered\n');
  // A config whose bytes do not hash to its ID.
  const fake = sha256Digest('not this');
  writeFileSync(join(img, 'imagedb/content/sha256', hexOf(fake)), 'garbage');
  // A tag pointing at a missing image.
  await store.tag('ghost:1', top);
  const raw = JSON.parse(readFileSync(join(img, 'repositories.json'), 'utf8')) as { Repositories: Record<string, Record<string, string>> };
  raw.Repositories['ghost']!['ghost:1'] = `sha256:${'0'.repeat(64)}`;
  writeFileSync(join(img, 'repositories.json'), JSON.stringify(raw));
  // Orphans: an overlay2 dir no layer uses, a link to nowhere, metadata of no image, a layer no image uses.
  mkdirSync(join(root, 'overlay2', 'f'.repeat(64), 'diff'), { recursive: true });
  symlinkSync('../nowhere/diff', join(root, 'overlay2/l', 'ZZZZZZZZZZZZZZZZZZZZZZZZZZ'));
  mkdirSync(join(img, 'imagedb/metadata/sha256', 'e'.repeat(64)));
  const spare = await store.putLayer(l1.chainId, fill('spare\n'));
  // A layerdb file with a trailing newline (dockerd drops the layer).
  const spare2 = await store.putLayer(null, fill('spare2\n'));
  writeFileSync(join(img, 'layerdb/sha256', hexOf(spare2.chainId), 'size'), `${spare2.size}\n`);

  // `spare` is leased by this (live) process: not an orphan until the process ends.
  const first = await fsck(store);
  const text = first.findings.map((f) => `${f.kind}: ${f.message}`).join('\n');
  for (const want of [/hashes to .* not its diffID|cannot be reassembled/, /its config hashes to/, /tag ghost:1 points at sha256:0+, which is missing/, /overlay2 dir .*f{64} belongs to no layer/, /l\/Z+ -> \.\.\/nowhere\/diff/, /metadata .*e{64} has no image config/, /size is empty or has surrounding whitespace/]) {
    assert.match(text, want);
  }
  assert.doesNotMatch(text, new RegExp(hexOf(spare.chainId)), 'a live lease is not an orphan');
  assert.doesNotMatch(text, new RegExp(hexOf(l1.chainId)), 'a good layer is not reported');

  const repaired = await fsck(store, { repair: true });
  assert.deepEqual(repaired.findings.map((f) => f.message), []);
  assert.ok(repaired.repaired >= 7);
  // The image on the tampered layer went with it (and its tag); the base image stayed.
  assert.equal(await store.resolve('app:top'), undefined);
  assert.ok(await store.resolve('app:base'));
  assert.deepEqual((await fsck(store)).findings, []);
});

test('the crash sweep: a dead owner\'s unfinished dir and unused leased layer go, a live owner\'s stay', async (t) => {
  const root = tempRoot(t);
  const { store, l1 } = await sample(root);
  const live = await store.overlay.create(null);
  const dead = await store.overlay.create(l1.cacheId);
  writeFileSync(join(dead.dir, '.tsbuild-incomplete'), '999999999-1');
  // A layer a dead process registered but never made an image of.
  const orphan = await store.putLayer(l1.chainId, fill('orphan\n'));
  const leases = join(root, 'tsbuild-leases');
  mkdirSync(join(leases, '999999999-1'));
  writeFileSync(join(leases, '999999999-1', hexOf(orphan.chainId)), '');
  unlinkSync(join(leases, ownerToken(), hexOf(orphan.chainId)));
  // A killed process's temp dir and lock temp file.
  mkdirSync(join(root, 'tsbuild-tmp', 'proc-999999999-1.abcd', 'tsbuild-run-x'), { recursive: true });
  writeFileSync(join(root, 'tsbuild.lock.999999999-1.ffff'), '999999999-1');
  await ImageStore.open(root);
  assert.equal(existsSync(dead.dir), false);
  assert.equal(existsSync(join(root, 'overlay2/l', dead.linkId)), false);
  assert.equal(existsSync(live.dir), true, 'a live process is still filling it');
  assert.equal(await store.layers.get(orphan.chainId), undefined);
  assert.deepEqual(readdirSync(join(root, 'tsbuild-tmp')), []);
  assert.deepEqual(readdirSync(leases), [ownerToken()]);
  assert.equal(existsSync(join(root, 'tsbuild.lock.999999999-1.ffff')), false);
  await store.overlay.remove(live.cacheId);
  assert.deepEqual((await fsck(store)).findings.map((f) => f.message), []);
});

test('a lock left by a dead process is taken over; a live one is waited for', async (t) => {
  const root = tempRoot(t);
  mkdirSync(root, { recursive: true });
  const lock = join(root, 'tsbuild.lock');
  writeFileSync(lock, '999999999-1');
  assert.equal(await withLock(lock, async () => 'got it', 2000), 'got it');
  assert.equal(existsSync(lock), false);
  // Held by us (another async caller): the second waits for the first.
  const order: string[] = [];
  await Promise.all([
    withLock(lock, async () => {
      order.push('a-in');
      await new Promise((r) => setTimeout(r, 50));
      order.push('a-out');
    }),
    new Promise((r) => setTimeout(r, 5)).then(() => withLock(lock, async () => void order.push('b'))),
  ]);
  assert.deepEqual(order, ['a-in', 'a-out', 'b']);
  assert.deepEqual(readdirSync(root), [], 'no lock temp files remain');
});

