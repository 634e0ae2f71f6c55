// Reproducible images push to identical manifests: two roots, two reproducible
// builds of the same context, pushed to a local registry under two names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { runBuild } from '../../src/exec/run-build.js';
import { pushImage } from '../../src/registry/index.js';
import { ImageStore } from '../../src/store/store.js';
import { importRootfs } from '../../src/store/import.js';
import { busyboxRootfsTar } from '../support/dockerd.js';
import { registryUnavailableReason, startRegistry } from '../support/registry.js';

const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync('/bin/busybox') ? 'needs busybox-static' : registryUnavailableReason();

test('reproducible builds on two roots push identical manifests', { skip, timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-repro-push-'));
  const registry = await startRegistry();
  t.after(async () => {
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const ctx = join(dir, 'ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nRUN mkdir -p /srv && echo built > /srv/out\nCOPY app.txt /srv/\nCMD ["cat", "/srv/out"]\n');
  writeFileSync(join(ctx, 'app.txt'), 'app\n');
  const digests: string[] = [];
  for (const side of ['a', 'b']) {
    const store = await ImageStore.open(join(dir, side));
    await importRootfs(store, Readable.from([busyboxRootfsTar()]), { reference: 'busybox:latest', now: new Date(1_700_000_000 * 1000), platform: { os: 'linux', architecture: 'amd64' } });
    const ref = `${registry.host}/repro/${side}:v1`;
    await runBuild({ root: store.root, contextDir: ctx, tags: [ref], sourceDateEpoch: 1_700_000_000 });
    digests.push((await pushImage(store, ref, {})).digest);
    await sleep(1100);
  }
  assert.equal(digests[0], digests[1]);
});
