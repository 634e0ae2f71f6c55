// Reproducible builds: every case of the e2e corpus, built with --reproducible on two
// different roots with a pause between, gives the same image ID and diffIDs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { runBuild } from '../../src/exec/run-build.js';
import { ImageStore } from '../../src/store/store.js';
import { importRootfs } from '../../src/store/import.js';
import { asImageId } from '../../src/image/digest.js';
import { busyboxRootfsTar } from '../support/dockerd.js';
import { hasCommand, loadCases, stageContext } from '../support/e2e-cases.js';

const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync('/bin/busybox') ? 'needs busybox-static' : undefined;
const EPOCH = 1_700_000_000;

test('reproducible builds across roots', { skip, timeout: 600_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-repro-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const base = busyboxRootfsTar();
  const roots: ImageStore[] = [];
  for (const side of ['a', 'b']) {
    const store = await ImageStore.open(join(dir, side));
    // The same base with the same epoch is the same image on both roots.
    await importRootfs(store, Readable.from([base]), { reference: 'busybox:latest', now: new Date(EPOCH * 1000), platform: { os: 'linux', architecture: 'amd64' } });
    roots.push(store);
  }
  const cases = loadCases();
  assert.ok(cases.length >= 20, `only ${cases.length} cases under test/e2e/cases`);
  for (const c of cases) {
    const missing = (c.json.requires ?? []).filter((cmd) => !hasCommand(cmd));
    await t.test(c.name, { skip: missing.length > 0 ? `needs ${missing.join(', ')}` : undefined }, async () => {
      const ids: string[] = [];
      for (const [i, store] of roots.entries()) {
        const ctx = join(dir, `${c.name}-${i}`);
        mkdirSync(ctx);
        stageContext(c, ctx);
        if (i > 0) await sleep(1100); // wall-clock time must not leak into the image
        const { id } = await runBuild({ root: store.root, contextDir: ctx, tags: [], noCache: true, reproducible: true, buildArgs: c.json.buildArgs ?? {}, ...(c.json.target ? { target: c.json.target } : {}) });
        ids.push(id);
      }
      const [a, b] = await Promise.all(roots.map((s, i) => s.images.require(asImageId(ids[i]!))));
      assert.deepEqual(a!.config.rootfs.diff_ids, b!.config.rootfs.diff_ids);
      assert.equal(ids[0], ids[1]);
    });
  }
});
