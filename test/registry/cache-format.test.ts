// The registry build cache's pure parts: the cache config format and its checks,
// which images mode=min and mode=max export, and the committed-image tracker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentEvents, type BuildEvents } from '../../src/exec/build.js';
import { trackCommitted } from '../../src/exec/build-cache.js';
import { sha256Digest, type DiffId, type ImageId } from '../../src/image/digest.js';
import { cacheImageIds, parseCacheConfig, serializeCacheConfig } from '../../src/registry/cache.js';
import { RegistryError } from '../../src/registry/errors.js';

const cfg = (n: number) => Buffer.from(JSON.stringify({ n, rootfs: { type: 'layers', diff_ids: [] } }));
const id = (b: Buffer) => sha256Digest(b) as ImageId;
const diff = ('sha256:' + 'd'.repeat(64)) as DiffId;

test('cache config round trip; a record whose config does not hash to its id, or whose layer is not listed, is rejected', () => {
  const a = cfg(1);
  const b = cfg(2);
  const c = { layers: [diff], records: [{ id: id(a), parent: null, config: a }, { id: id(b), parent: id(a), config: b, diffId: diff }] };
  assert.deepEqual(parseCacheConfig(serializeCacheConfig(c)), c);
  const bad = (doc: object, re: RegExp) => assert.throws(() => parseCacheConfig(Buffer.from(JSON.stringify(doc))), (e) => e instanceof RegistryError && e.code === 'REGISTRY_MANIFEST' && re.test(e.message));
  bad({ version: 1, layers: [], records: [{ id: id(a), parent: null, config: b.toString('base64') }] }, /does not hash to/);
  bad({ version: 1, layers: [], records: [{ id: id(b), parent: null, config: b.toString('base64'), diffId: diff }] }, /does not list/);
  bad({ version: 2, layers: [], records: [] }, /unsupported version 2/);
  const notImage = Buffer.from('[1]');
  bad({ version: 1, layers: [], records: [{ id: id(notImage), parent: null, config: notImage.toString('base64') }] }, /not an image config/);
  assert.throws(() => parseCacheConfig(Buffer.from('nope')), /not JSON/);
});

test('mode=min: the final image\'s chain back to a base; mode=max: every committed step image', () => {
  const base = 'sha256:b' as ImageId;
  const parents = new Map<string, ImageId | null>([['s1', base], ['s2', 's1' as ImageId], ['t1', base], ['f1', 's2' as ImageId], [base, null]]);
  const parentOf = (i: ImageId) => parents.get(i) ?? null;
  const committed = [base, 't1', base, 's1', 's2', 'f1'] as ImageId[];
  assert.deepEqual(cacheImageIds(committed, 'f1' as ImageId, new Set([base]), parentOf, 'min'), ['s1', 's2', 'f1']);
  assert.deepEqual(cacheImageIds(committed, 'f1' as ImageId, new Set([base]), parentOf, 'max'), ['t1', 's1', 's2', 'f1']);
  // FROM scratch: the chain ends at a null parent.
  const x = 'sha256:x' as ImageId;
  const y = 'sha256:y' as ImageId;
  assert.deepEqual(cacheImageIds([x, y], y, new Set(), (i) => (i === y ? x : null), 'min'), [x, y]);
});

test('trackCommitted records committed images of the shared sink and of per-stage sinks', () => {
  const seen: string[] = [];
  const stageSink: BuildEvents = { ...silentEvents, committed: (i) => void seen.push(`stage:${i}`) };
  const events: BuildEvents = { ...silentEvents, committed: (i) => void seen.push(`main:${i}`), stage: () => stageSink };
  const into: ImageId[] = [];
  const tracked = trackCommitted(events, into);
  tracked.committed('sha256:1' as ImageId);
  tracked.stage!({ index: 0, name: 'a' }).committed('sha256:2' as ImageId);
  assert.deepEqual(into, ['sha256:1', 'sha256:2']);
  assert.deepEqual(seen, ['main:sha256:1', 'stage:sha256:2']);
  assert.equal(trackCommitted(silentEvents, []).stage, undefined, 'no stage sinks where there were none');
});
