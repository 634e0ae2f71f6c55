import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore } from '../../src/store/store.js';
import { ownerToken } from '../../src/store/lock.js';
import { asDiffId, chainIdOf, hexOf, sha256Digest, type DiffId } from '../../src/image/digest.js';
import { serializeImageConfig, type ImageConfig } from '../../src/image/image.js';
import { emptyContainerConfig } from '../../src/image/config.js';

function tempRoot(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'root');
}

/** A fill that writes one file and reports a made-up diffID derived from its name. */
function fakeFill(name: string) {
  return async (diffDir: string) => {
    writeFileSync(join(diffDir, name), name);
    return { diffId: asDiffId(sha256Digest(`layer ${name}`)), tarSplit: Buffer.from('ts'), size: name.length };
  };
}

function config(diffIds: DiffId[], created = '2026-11-23T00:00:00Z'): Buffer {
  const img: ImageConfig = {
    architecture: 'amd64',
    config: emptyContainerConfig(),
    container_config: emptyContainerConfig(),
    created,
    docker_version: 'test',
    history: diffIds.map(() => ({ created, created_by: 'test' })),
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  return serializeImageConfig(img);
}

const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);

test('layout, modes and layerdb/overlay2 files follow dockerd 20.10', async (t) => {
  const root = tempRoot(t);
  const store = await ImageStore.open(root);
  assert.equal(mode(root), '710');
  assert.equal(mode(join(root, 'image/overlay2/imagedb')), '700');
  assert.equal(mode(join(root, 'image/overlay2/layerdb/sha256')), '755');
  assert.equal(mode(join(root, 'overlay2')), '710');
  assert.equal(mode(join(root, 'overlay2/l')), '700');

  const base = await store.putLayer(null, fakeFill('a'));
  const top = await store.putLayer(base.chainId, fakeFill('b'));
  assert.equal(top.chainId, chainIdOf(base.chainId, top.diffId));
  const ldir = join(root, 'image/overlay2/layerdb/sha256', hexOf(top.chainId));
  assert.equal(readFileSync(join(ldir, 'diff'), 'utf8'), top.diffId);
  assert.equal(readFileSync(join(ldir, 'size'), 'utf8'), '1');
  assert.equal(readFileSync(join(ldir, 'parent'), 'utf8'), base.chainId);
  assert.equal(readFileSync(join(ldir, 'cache-id'), 'utf8'), top.cacheId);
  assert.equal(existsSync(join(root, 'image/overlay2/layerdb/sha256', hexOf(base.chainId), 'parent')), false);
  assert.equal(mode(ldir), '700');
  assert.equal(mode(join(ldir, 'diff')), '644');

  const odir = join(root, 'overlay2', top.cacheId);
  const link = readFileSync(join(odir, 'link'), 'utf8');
  assert.match(link, /^[A-Z2-7]{26}$/);
  assert.equal(readlinkSync(join(root, 'overlay2/l', link)), `../${top.cacheId}/diff`);
  const baseLink = readFileSync(join(root, 'overlay2', base.cacheId, 'link'), 'utf8');
  assert.equal(readFileSync(join(odir, 'lower'), 'utf8'), `l/${baseLink}`);
  assert.ok(existsSync(join(odir, 'work')));
  assert.ok(existsSync(join(root, 'overlay2', base.cacheId, 'committed')));
  assert.equal(existsSync(join(root, 'overlay2', base.cacheId, 'lower')), false);
  assert.deepEqual(readdirSync(join(root, 'image/overlay2/layerdb/tmp')), []);
});

test('putLayer is idempotent by chainID and cleans up a failed fill', async (t) => {
  const root = tempRoot(t);
  const store = await ImageStore.open(root);
  const first = await store.putLayer(null, fakeFill('same'));
  const again = await store.putLayer(null, fakeFill('same'));
  assert.equal(again.cacheId, first.cacheId);
  await assert.rejects(store.putLayer(null, async () => { throw new Error('boom'); }), /boom/);
  const dirs = readdirSync(join(root, 'overlay2')).filter((d) => d !== 'l');
  assert.deepEqual(dirs, [first.cacheId]);
  assert.equal(readdirSync(join(root, 'overlay2/l')).length, 1);
});

test('images, tags, lookup by name, ID and short ID; repositories.json byte form', async (t) => {
  const root = tempRoot(t);
  const store = await ImageStore.open(root);
  const layer = await store.putLayer(null, fakeFill('x'));
  const bytes = config([layer.diffId]);
  const id = await store.putImage(bytes);
  assert.equal(id, sha256Digest(bytes));
  assert.equal(mode(join(root, 'image/overlay2/imagedb/content/sha256', hexOf(id))), '600');
  await store.tag('busybox:local', id);
  await store.tag('docker.io/library/test-image', id);
  assert.equal(
    readFileSync(join(root, 'image/overlay2/repositories.json'), 'utf8'),
    `{"Repositories":{"busybox":{"busybox:local":"${id}"},"test-image":{"test-image:latest":"${id}"}}}`,
  );
  assert.match(readFileSync(join(root, 'image/overlay2/imagedb/metadata/sha256', hexOf(id), 'lastUpdated'), 'utf8'), /^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
  for (const ref of ['busybox:local', 'test-image', 'docker.io/library/test-image:latest', id, hexOf(id), hexOf(id).slice(0, 12)]) {
    assert.equal((await store.resolve(ref))?.id, id, ref);
  }
  assert.equal(await store.resolve('nope'), undefined);
  await assert.rejects(store.putImage(config([asDiffId(sha256Digest('missing'))])), /not in the store/);
});

test('rmi untags, deletes untagged childless images with their untagged parents, then unused layers', async (t) => {
  const root = tempRoot(t);
  const store = await ImageStore.open(root);
  const l1 = await store.putLayer(null, fakeFill('1'));
  const l2 = await store.putLayer(l1.chainId, fakeFill('2'));
  const parent = await store.putImage(config([l1.diffId]));
  const child = await store.putImage(config([l1.diffId, l2.diffId]), parent);
  await store.tag('app:v1', child);
  await store.tag('app:v2', child);
  await assert.rejects(store.remove(hexOf(child).slice(0, 12)), /referenced in multiple repositories/);
  assert.deepEqual(await store.remove('app:v1'), ['Untagged: app:v1']);
  const lines = await store.remove('app:v2');
  assert.deepEqual(lines.slice(0, 3), ['Untagged: app:v2', `Deleted: ${child}`, `Deleted: ${parent}`]);
  assert.equal((await store.list()).length, 0);
  assert.equal((await store.layers.list()).length, 0);
  assert.deepEqual(readdirSync(join(root, 'overlay2')), ['l']);
  assert.deepEqual(readdirSync(join(root, 'overlay2/l')), []);
});

test('prune removes dangling images only', async (t) => {
  const root = tempRoot(t);
  const store = await ImageStore.open(root);
  const l1 = await store.putLayer(null, fakeFill('1'));
  const kept = await store.putImage(config([l1.diffId], '2026-01-01T00:00:00Z'));
  await store.tag('kept', kept);
  const dangling = await store.putImage(config([l1.diffId], '2026-01-02T00:00:00Z'));
  const lines = await store.prune();
  assert.deepEqual(lines, [`Deleted: ${dangling}`]);
  assert.ok(await store.resolve('kept'));
  assert.equal((await store.layers.list()).length, 1);
});

test('open sweeps only after a crash: a dead session, scratch dir or lock token', async (t) => {
  const root = tempRoot(t);
  await ImageStore.open(root);
  const junk = join(root, 'image/overlay2/imagedb/content/sha256/.tmp-abc-x');
  writeFileSync(junk, '{');
  await ImageStore.open(root);
  assert.equal(existsSync(junk), true, 'no tsbuild died: no sweep');
  for (const evidence of ['tsbuild-leases/999999999-1/', 'tsbuild-tmp/proc-999999999-1.abcd/', 'tsbuild.lock.999999999-1.abcd']) {
    writeFileSync(junk, '{');
    if (evidence.endsWith('/')) mkdirSync(join(root, evidence), { recursive: true });
    else writeFileSync(join(root, evidence), '999999999-1');
    await ImageStore.open(root);
    assert.equal(existsSync(junk), false, `swept after ${evidence}`);
    assert.equal(existsSync(join(root, evidence)), false);
  }
  // A dead tsbuild's temp dir outside the store (a rootfs worker that outlived its parent's session).
  writeFileSync(junk, '{');
  const outside = join(tmpdir(), 'tsbuild-999999999-1');
  mkdirSync(outside, { recursive: true });
  await ImageStore.open(root);
  assert.equal(existsSync(junk), false, 'swept after a dead temp dir outside the store');
  assert.equal(existsSync(outside), false);
});

test('a session ends with its process: removed at a normal exit, left by kill -9', async (t) => {
  const root = tempRoot(t);
  const storeModule = new URL('../../src/store/store.ts', import.meta.url).pathname;
  const child = (then: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { ImageStore } from '${storeModule}'; await ImageStore.open('${root}'); ${then}`], { encoding: 'utf8' });
  const normal = child('');
  assert.equal(normal.status, 0, normal.stderr);
  assert.deepEqual(readdirSync(join(root, 'tsbuild-leases')), []);
  const killed = child("process.kill(process.pid, 'SIGKILL');");
  assert.equal(killed.signal, 'SIGKILL');
  assert.equal(readdirSync(join(root, 'tsbuild-leases')).length, 1);
  await ImageStore.open(root);
  assert.deepEqual(readdirSync(join(root, 'tsbuild-leases')), [ownerToken()]);
});

test('leftovers of a crash are swept on open and never read as valid', async (t) => {
  const root = tempRoot(t);
  const store = await ImageStore.open(root);
  const half = await store.overlay.create(null);
  // As a crashed process leaves it: the marker names an owner that is gone (a live one's dir is kept).
  writeFileSync(join(half.dir, '.tsbuild-incomplete'), '999999999-1');
  mkdirSync(join(root, 'image/overlay2/layerdb/tmp/write-set-123'));
  writeFileSync(join(root, 'image/overlay2/imagedb/content/sha256/.tmp-abc-x'), '{');
  // A layer whose size file has a trailing newline is invalid for dockerd, so for us too.
  const bad = await store.putLayer(null, fakeFill('bad'));
  writeFileSync(join(root, 'image/overlay2/layerdb/sha256', hexOf(bad.chainId), 'size'), '3\n');
  assert.equal(await store.layers.get(bad.chainId), undefined);
  // ...and the session dir it opened the store with.
  mkdirSync(join(root, 'tsbuild-leases/999999999-1'));
  await ImageStore.open(root);
  assert.equal(existsSync(half.dir), false);
  assert.equal(existsSync(join(root, 'tsbuild-leases/999999999-1')), false);
  assert.deepEqual(readdirSync(join(root, 'image/overlay2/layerdb/tmp')), []);
  assert.deepEqual(readdirSync(join(root, 'image/overlay2/imagedb/content/sha256')), []);
});
