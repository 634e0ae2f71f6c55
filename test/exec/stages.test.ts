// The stage graph: independent stages build at the same time (bounded), each stage's
// output labelled; a failing stage stops the others cleanly. Scheduling is checked with
// fake stages; real builds (root, busybox-static) check overlap via event timestamps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBuild } from '../../src/exec/run-build.js';
import { silentEvents, StepFailedError, type BuildEvents, type StageTag } from '../../src/exec/build.js';
import { hasIndependentStages, runStageGraph, type StageNode } from '../../src/exec/stage-graph.js';
import { plainProgress } from '../../src/cli/progress.js';
import type { ImageStore } from '../../src/store/store.js';
import { buildFixture, mountsUnder, overlayDirs, realBuildSkip } from '../support/build-fixture.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const graph = (deps: Record<number, number[]>) => new Map<number, StageNode>(Object.entries(deps).map(([i, d]) => [Number(i), { index: Number(i), dependsOn: d }]));

test('stage graph: a stage starts once its dependencies are built, at most `limit` at a time', async () => {
  // 0 and 1 are independent; 2 needs 0; 3 needs 1 and 2.
  const nodes = graph({ 0: [], 1: [], 2: [0], 3: [1, 2] });
  const log: string[] = [];
  let live = 0;
  let peak = 0;
  await runStageGraph([0, 1, 2, 3], nodes, 2, async (i) => {
    live++;
    peak = Math.max(peak, live);
    log.push(`start ${i}`);
    await sleep(i === 1 ? 60 : 20);
    log.push(`end ${i}`);
    live--;
  });
  assert.equal(peak, 2);
  assert.deepEqual(log.slice(0, 2), ['start 0', 'start 1']);
  // 2 starts when 0 ends, without waiting for 1; 3 waits for both.
  assert.ok(log.indexOf('start 2') < log.indexOf('end 1'));
  assert.ok(log.indexOf('start 3') > log.indexOf('end 1') && log.indexOf('start 3') > log.indexOf('end 2'));
  peak = 0;
  await runStageGraph([0, 1, 2, 3], nodes, 1, async () => {
    live++;
    peak = Math.max(peak, live);
    await sleep(5);
    live--;
  });
  assert.equal(peak, 1);
  assert.equal(hasIndependentStages([0, 1, 2, 3], nodes), true);
  assert.equal(hasIndependentStages([0, 2], nodes), false);
});

test('stage graph: the first failure aborts the running stages, waits for them, starts no more', async () => {
  const nodes = graph({ 0: [], 1: [], 2: [0, 1] });
  const seen: string[] = [];
  await assert.rejects(
    runStageGraph([0, 1, 2], nodes, 2, async (i, signal) => {
      if (i === 1) {
        await sleep(10);
        throw new Error('stage 1 failed');
      }
      if (i === 0) {
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        await sleep(20); // winding down (unmount, remove the layer dir) before the build reports
        seen.push('0 cleaned up');
        throw new Error('aborted');
      }
      seen.push(`${i} ran`);
    }),
    /stage 1 failed/,
  );
  assert.deepEqual(seen, ['0 cleaned up']);
});

// ---------------------------------------------------------------------------------------------
// Real builds

const skip = realBuildSkip;
const setup = (t: { after(fn: () => void): void }, files: Record<string, string>) => buildFixture(t, files, 'tsbuild-stages-');

/** Events that record, per stage, when each RUN started and its layer was committed; and the plain text. */
function recorder(): { events: BuildEvents; runs: Map<string, { start: number; end: number }>; text: () => string } {
  const runs = new Map<string, { start: number; end: number }>();
  let out = '';
  const plain = plainProgress((s) => void (out += s), () => undefined);
  const sink = (tag: StageTag): BuildEvents => {
    const p = plain.stage!(tag);
    let current = '';
    return {
      ...p,
      step: (n, total, text) => {
        current = text;
        p.step(n, total, text);
      },
      running: (id) => {
        if (current.startsWith('RUN')) runs.set(tag.name, { start: Date.now(), end: Infinity });
        p.running(id);
      },
      removing: (id) => {
        const r = runs.get(tag.name);
        if (r && r.end === Infinity) r.end = Date.now();
        p.removing(id);
      },
    };
  };
  return { events: { ...plain, stage: sink }, runs, text: () => out };
}

test('independent stages RUN at the same time, each output line labelled with its stage', { skip }, async (t) => {
  const { root, ctx, store } = await setup(t, {
    Dockerfile: [
      'FROM busybox:latest AS a',
      'RUN sleep 1; echo from-a > /a',
      'FROM busybox:latest AS b',
      'RUN sleep 1; echo from-b > /b',
      'FROM busybox:latest',
      'COPY --from=a /a /a',
      'COPY --from=b /b /b',
      '',
    ].join('\n'),
  });
  const rec = recorder();
  await runBuild({ root, contextDir: ctx, tags: ['both'], events: rec.events });
  const a = rec.runs.get('a')!;
  const b = rec.runs.get('b')!;
  assert.ok(a && b, 'both RUNs ran');
  // Overlap: each RUN started before the other one finished.
  assert.ok(a.start < b.end && b.start < a.end, `RUNs did not overlap: a ${JSON.stringify(a)} b ${JSON.stringify(b)}`);
  const lines = rec.text().trimEnd().split('\n');
  for (const l of lines) assert.match(l, /^\[(a|b|stage-2)\] |^Successfully /, l);
  assert.ok(lines.includes('[a] Step 1/2 : FROM busybox:latest AS a'));
  assert.ok(lines.includes('[b] Step 2/2 : RUN sleep 1; echo from-b > /b'));
  assert.ok(lines.includes('[stage-2] Step 3/3 : COPY --from=b /b /b'));
  const image = await store.require('both');
  assert.equal(image.config.rootfs.diff_ids.length, 3);
  // A rebuild is all cache, looked up per stage.
  const again = recorder();
  await runBuild({ root, contextDir: ctx, tags: ['both'], events: again.events });
  assert.equal(again.text().match(/Using cache/g)?.length, 4);
  assert.equal((await store.require('both')).id, image.id);
});

test('a failing stage stops the stage running beside it: its error, no mount, layer dir or temp dir left', { skip }, async (t) => {
  const { root, ctx, store } = await setup(t, {
    Dockerfile: ['FROM busybox:latest AS slow', 'RUN sleep 30', 'FROM busybox:latest AS bad', 'RUN sleep 0.5; exit 3', 'FROM busybox:latest', 'COPY --from=slow /bin/sh /x', 'COPY --from=bad /bin/sh /y', ''].join('\n'),
  });
  const dirs = overlayDirs(root);
  const started = Date.now();
  await assert.rejects(runBuild({ root, contextDir: ctx, tags: ['never'], events: { ...silentEvents, stage: () => silentEvents } }), (e: unknown) => {
    assert.ok(e instanceof StepFailedError, String(e));
    assert.equal(e.exitCode, 3);
    return true;
  });
  assert.ok(Date.now() - started < 20_000, 'the sleeping stage was not stopped');
  assert.equal(await store.resolve('never'), undefined);
  assert.equal(overlayDirs(root), dirs);
  assert.equal(mountsUnder(root), 0);
  assert.deepEqual(readdirSync(join(root, 'tsbuild-tmp')), []);
});

/** A file of the image's merged tree, read from its layer dirs (top-most wins). */
async function imageFile(store: ImageStore, ref: string, path: string): Promise<string | undefined> {
  for (const dir of await store.lowerDirs(await store.require(ref))) {
    if (existsSync(join(dir, path))) return readFileSync(join(dir, path), 'utf8');
  }
  return undefined;
}

{
  const snapshotter = 'overlay';
  test('RUN --mount from=<stage|image>: bind (read-only, rw thrown away, source path), cache seeded; keyed by the stage', { skip }, async (t) => {
    const { root, ctx, store } = await setup(t, {
      Dockerfile: [
        'FROM busybox:latest AS build',
        'COPY v.txt /out/sub/file',
        'RUN ln -s sub /out/link',
        'FROM scratch AS nothing',
        'FROM busybox:latest',
        'RUN --mount=from=nothing,target=/n test -z "$(ls -A /n)" && echo empty > /n-ok',
        'RUN --mount=type=bind,from=build,source=/out,target=/mnt cat /mnt/sub/file > /got && ls /mnt > /listing && ! touch /mnt/x 2>/dev/null',
        'RUN --mount=type=bind,from=build,source=/out/link,target=/w,rw echo scratch > /w/new && cat /w/new > /rw-ok',
        'RUN --mount=type=bind,from=busybox:latest,target=/bb test -x /bb/bin/busybox && echo ok > /img-ok',
        'RUN --mount=type=cache,id=seeded,from=build,source=/out/sub,target=/cache cat /cache/file > /cache-ok',
        '',
      ].join('\n'),
      'v.txt': 'one\n',
    });
    await runBuild({ root, contextDir: ctx, tags: ['m'], snapshotter });
    assert.equal(await imageFile(store, 'm', 'got'), 'one\n');
    assert.equal(await imageFile(store, 'm', 'listing'), 'link\nsub\n');
    assert.equal(await imageFile(store, 'm', 'rw-ok'), 'scratch\n');
    assert.equal(await imageFile(store, 'm', 'img-ok'), 'ok\n');
    assert.equal(await imageFile(store, 'm', 'cache-ok'), 'one\n');
    assert.equal(await imageFile(store, 'm', 'n-ok'), 'empty\n');
    // Neither the mount points nor the rw writes reach a layer; the source stage is untouched.
    for (const p of ['mnt', 'w', 'bb', 'cache', 'n', 'out/sub/new']) assert.equal(await imageFile(store, 'm', p), undefined, p);
    const layers = await store.lowerDirs(await store.require('m'));
    for (const dir of layers) for (const p of ['mnt', 'w', 'bb', 'cache']) assert.equal(existsSync(join(dir, p)), false, `${dir}/${p}`);
    assert.equal(mountsUnder(root), 0);
    // The stage changed: the RUN reading it through the mount runs again.
    writeFileSync(join(ctx, 'v.txt'), 'two\n');
    await runBuild({ root, contextDir: ctx, tags: ['m'], snapshotter });
    assert.equal(await imageFile(store, 'm', 'got'), 'two\n');
  });
}

test('RUN --mount from=<stage> with the copy snapshotter binds a copy of the stage', { skip }, async (t) => {
  const { root, ctx, store } = await setup(t, {
    Dockerfile: 'FROM busybox:latest AS build\nRUN mkdir /out && echo one > /out/f\nFROM busybox:latest\nRUN --mount=from=build,source=/out,target=/m,rw cat /m/f > /got && echo x > /m/f\n',
  });
  await runBuild({ root, contextDir: ctx, tags: ['c'], snapshotter: 'copy' });
  assert.equal(await imageFile(store, 'c', 'got'), 'one\n');
  assert.equal(await imageFile(store, 'c', 'm'), undefined);
  assert.deepEqual(readdirSync(join(root, 'tsbuild-tmp')), []);
});

test('COPY --link makes the same layer on any base, parents fresh and nothing of the base in it; stacked, the tree is right', { skip }, async (t) => {
  const { root, ctx, store } = await setup(t, {
    Dockerfile: [
      'FROM busybox:latest AS one',
      'RUN mkdir -p /app && chmod 700 /app && echo base > /app/old && rm /bin/vi',
      'COPY --link a.txt /app/new.txt',
      'RUN cat /app/old /app/new.txt > /both && stat -c %a /app > /app-mode',
      'FROM scratch AS two',
      'COPY --link a.txt /app/new.txt',
      'FROM one AS plain',
      'COPY a.txt /app/new.txt',
      '',
    ].join('\n'),
    'a.txt': 'new\n',
  });
  await runBuild({ root, contextDir: ctx, tags: ['one'], target: 'one' });
  await runBuild({ root, contextDir: ctx, tags: ['two'], target: 'two' });
  const one = await store.require('one');
  const two = await store.require('two');
  const linked = one.config.rootfs.diff_ids[2]!;
  assert.equal(two.config.rootfs.diff_ids.length, 1);
  assert.equal(two.config.rootfs.diff_ids[0], linked);
  // The layer: the file and a fresh /app (0755), no whiteout, nothing from the base.
  const chain = await store.layerChain(one);
  const diff = join(store.overlay.dirOf(chain[2]!.cacheId), 'diff');
  assert.deepEqual(readdirSync(diff), ['app']);
  assert.deepEqual(readdirSync(join(diff, 'app')), ['new.txt']);
  assert.equal(execFileSync('stat', ['-c', '%a', join(diff, 'app')], { encoding: 'utf8' }).trim(), '755');
  // Stacked: the base's files stay visible, the linked dir's mode wins (BuildKit's merge).
  assert.equal(await imageFile(store, 'one', 'both'), 'base\nnew\n');
  assert.equal(await imageFile(store, 'one', 'app-mode'), '755\n');
  // A plain COPY on the same base does see the base: a different layer.
  await runBuild({ root, contextDir: ctx, tags: ['plain'], target: 'plain' });
  assert.notEqual((await store.require('plain')).config.rootfs.diff_ids.at(-1), linked);
  // Names cannot be looked up in a layer made apart from the image.
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY --link --chown=app a.txt /x\n');
  await assert.rejects(runBuild({ root, contextDir: ctx, tags: [] }), /--chown=app: user and group names cannot be resolved in a linked layer/);
});
