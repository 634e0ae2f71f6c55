// The copy snapshotter against overlay: the same build gives the same layers (diffIDs) and image
// IDs. SOURCE_DATE_EPOCH clamps the mtimes of what the steps create, the only part that may differ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { runBuild } from '../../src/exec/run-build.js';
import { ImageStore } from '../../src/store/store.js';
import { importRootfs } from '../../src/store/import.js';
import { exampleBusyboxTar as busyboxTar } from '../support/build-fixture.js';
import { findRuntime } from '../../src/sandbox/oci.js';

const skip = process.getuid?.() !== 0 ? 'needs root (mounts, namespaces)' : !existsSync('/bin/busybox') ? 'needs busybox-static' : undefined;


const DOCKERFILE = `FROM busybox:latest AS base
RUN echo one > /new.txt && mkdir -p /d/sub /d/keep && echo x > /d/sub/f && echo y > /d/g && ln -s ../new.txt /d/link && ln /new.txt /hard.txt && mkfifo /fifo && echo g > /gone.txt
RUN rm /etc/group /gone.txt && rm -rf /d && mkdir /d && echo z > /d/h && chmod 700 /home/app && chmod 600 /new.txt && chown 1000:1000 /hard.txt
RUN rm /bin/cat && rm /bin/ls && mkdir /bin/ls && rm -rf /tmp && echo file > /tmp && mkdir -p /gone.txt && chmod 4755 /bin/busybox
WORKDIR /w/x
COPY ctx.txt /d/
COPY dir/ /copied/
RUN rm -rf /copied/a && echo again > /copied/b && touch -d @0 /w
FROM busybox:latest
COPY --from=base /d /from-base/
RUN --mount=type=tmpfs,target=/cache echo t > /cache/x && echo done > /done
`;

async function buildWith(t: { after(fn: () => void): void }, snapshotter: 'overlay' | 'copy' | undefined, runtime?: 'runc' | 'crun', rootName = 'root') {
  const dir = mkdtempSync(join(tmpdir(), `tsbuild-copy-${snapshotter ?? 'auto'}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, rootName);
  const ctx = join(dir, 'ctx');
  mkdirSync(join(ctx, 'dir'), { recursive: true });
  writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE);
  writeFileSync(join(ctx, 'ctx.txt'), 'from the context\n');
  writeFileSync(join(ctx, 'dir/a'), 'a\n');
  writeFileSync(join(ctx, 'dir/b'), 'b\n');
  const store = await ImageStore.open(root);
  await importRootfs(store, Readable.from([busyboxTar()]), { reference: 'busybox:latest', platform: { os: 'linux', architecture: 'amd64' }, now: new Date('2024-01-01T00:00:00Z') });
  const t0 = performance.now();
  const how = { ...(snapshotter ? { snapshotter } : {}), ...(runtime ? { runtime } : {}) };
  const { id } = await runBuild({ root, contextDir: ctx, tags: ['out'], sourceDateEpoch: 1750000000, ...how });
  const ms = performance.now() - t0;
  const image = await store.require('out:latest');
  assert.equal(image.id, id);
  // The first stage's image (all cache hits now).
  const base = await runBuild({ root, contextDir: ctx, tags: ['base'], target: 'base', sourceDateEpoch: 1750000000, ...how });
  const baseImage = await store.require('base:latest');
  return { id, baseId: base.id, diffIds: [...baseImage.config.rootfs.diff_ids, '|', ...image.config.rootfs.diff_ids], root, store, ms };
}

let reference: Awaited<ReturnType<typeof buildWith>> | undefined;

test('copy and overlay snapshotters give the same layers and image', { skip }, async (t) => {
  const overlay = await buildWith(t, 'overlay');
  reference = overlay;
  const copy = await buildWith(t, 'copy');
  t.diagnostic(`build: overlay ${overlay.ms.toFixed(0)} ms, copy ${copy.ms.toFixed(0)} ms`);
  assert.deepEqual(copy.diffIds, overlay.diffIds);
  assert.equal(copy.baseId, overlay.baseId);
  assert.equal(copy.id, overlay.id);
  // Nothing left in the store's scratch space.
  for (const r of [overlay.root, copy.root]) {
    const scratch = join(r, 'tsbuild-tmp');
    assert.deepEqual(existsSync(scratch) ? readdirSync(scratch) : [], []);
  }
});

for (const [runtime, snapshotter] of [
  ['runc', 'overlay'],
  ['crun', 'copy'],
] as const) {
  const why = skip ?? (findRuntime(runtime) === undefined ? `needs ${runtime} (apt-get install ${runtime})` : undefined);
  test(`--runtime ${runtime} with the ${snapshotter} snapshotter gives the same layers and image`, { skip: why }, async (t) => {
    const ref = reference ?? (await buildWith(t, 'overlay'));
    const built = await buildWith(t, snapshotter, runtime);
    t.diagnostic(`build: ${runtime} + ${snapshotter} ${built.ms.toFixed(0)} ms`);
    assert.deepEqual(built.diffIds, ref.diffIds);
    assert.equal(built.id, ref.id);
  });
}

test('automatic selection: a store overlay cannot use (a ":" in its path) builds with the copy snapshotter', { skip: skip ?? (process.env['TSBUILD_SNAPSHOTTER'] ? 'TSBUILD_SNAPSHOTTER is set' : undefined) }, async (t) => {
  const ref = reference ?? (await buildWith(t, 'overlay'));
  const built = await buildWith(t, undefined, undefined, 'store:with-colon');
  assert.deepEqual(built.diffIds, ref.diffIds);
  assert.equal(built.id, ref.id);
});
