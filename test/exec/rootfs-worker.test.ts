// The rootfs worker mounts in a private mount namespace: nothing leaks into ours.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOnRootfs } from '../../src/exec/rootfs-ops.js';

const skip = process.getuid?.() !== 0 ? 'needs root for overlay mounts' : undefined;
/** Mounts in our namespace that involve `dir` (other tests may mount elsewhere meanwhile). */
const mountsUnder = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir)).length;

test('mkdir through an overlay lands in the upper dir only; read sees the merged view', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-worker-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lower = join(dir, 'lower');
  mkdirSync(join(lower, 'srv'), { recursive: true });
  writeFileSync(join(lower, 'srv', 'f'), 'from lower');
  const upper = join(dir, 'upper');
  const work = join(dir, 'work');
  mkdirSync(upper);
  mkdirSync(work);
  const r = await runOnRootfs({ lowerDirs: [lower], upperDir: upper, workDir: work }, { type: 'mkdir', path: '/srv/app/x', uid: 1000, gid: 1000 });
  assert.deepEqual(r.created, ['/srv/app', '/srv/app/x']);
  assert.deepEqual(readdirSync(upper), ['srv']);
  assert.equal(statSync(join(upper, 'srv/app/x')).uid, 1000);
  assert.equal((statSync(join(upper, 'srv/app')).mode & 0o777).toString(8), '755');
  const [content, missing] = await runOnRootfs({ lowerDirs: [upper, lower] }, { type: 'read', paths: ['/srv/f', '/nope'] });
  assert.equal(content, 'from lower');
  assert.equal(missing, null);
  assert.equal(mountsUnder(dir), 0);
});
