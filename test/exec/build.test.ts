// Real builds on this machine (root: overlay mounts and namespaces; busybox-static for
// the base image, which CI installs). Each test uses its own store root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBuild } from '../../src/exec/run-build.js';
import { StepFailedError } from '../../src/exec/build.js';
import { buildFixture as setup, mountsUnder, overlayDirs, realBuildSkip } from '../support/build-fixture.js';
import { DockerfileError, TsbuildError } from '../../src/errors.js';

const skip = realBuildSkip;

test('the seeds’ test-image: layers, history, whiteouts, config; a rebuild is all cache', { skip }, async (t) => {
  const { root, ctx, store } = await setup(t, {
    Dockerfile: 'FROM busybox:latest\nLABEL name=test-image\nRUN echo hello > /hello.txt\nRUN rm /hello.txt && echo world > /world.txt\nCOPY startService.sh /\nCMD ["/bin/sh", "/startService.sh"]\n',
    'startService.sh': 'echo started\n',
  });
  const { id } = await runBuild({ root, contextDir: ctx, tags: ['test-image'] });
  const image = await store.require('test-image:latest');
  assert.equal(image.id, id);
  const c = image.config;
  assert.equal(c.rootfs.diff_ids.length, 4);
  const copyText = c.history[4]!.created_by!;
  assert.match(copyText, /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \/ $/);
  assert.deepEqual(c.history.slice(1).map((h) => [h.created_by, h.empty_layer ?? false]), [
    ['/bin/sh -c #(nop)  LABEL name=test-image', true],
    ['/bin/sh -c echo hello > /hello.txt', false],
    ['/bin/sh -c rm /hello.txt && echo world > /world.txt', false],
    [copyText, false],
    ['/bin/sh -c #(nop)  CMD ["/bin/sh" "/startService.sh"]', true],
  ]);
  assert.deepEqual(c.config.Labels, { name: 'test-image' });
  assert.deepEqual(c.config.Cmd, ['/bin/sh', '/startService.sh']);
  assert.deepEqual(c.container_config.Cmd, ['/bin/sh', '-c', '#(nop) ', 'CMD ["/bin/sh" "/startService.sh"]']);
  assert.equal(c.config.Image, image.parent);
  // The second RUN deleted a lower file: its layer holds a 0/0 whiteout.
  const layers = await store.layerChain(image);
  const third = join(store.overlay.dirOf(layers[2]!.cacheId), 'diff');
  assert.deepEqual(readdirSync(third).sort(), ['hello.txt', 'world.txt']);
  assert.equal(execFileSync('stat', ['-c', '%F %t:%T', join(third, 'hello.txt')], { encoding: 'utf8' }).trim(), 'character special file 0:0');
  // Step overlays are mounted volatile: no marker or whiteout temp may stay in a layer's work dir,
  // or dockerd's own mount of the layer (docker save, a container's Get) fails with EINVAL.
  for (const l of layers.slice(1)) {
    const dir = store.overlay.dirOf(l.cacheId);
    // (A COPY written straight into the upper dir was never mounted: its work dir is empty, as
    // dockerd's own layers are until their first mount.)
    const work = readdirSync(join(dir, 'work'));
    assert.ok(work.length === 0 || (work.length === 1 && work[0] === 'work'), `${dir}/work holds ${work.join(', ')}`);
    if (work.length === 1) assert.deepEqual(readdirSync(join(dir, 'work', 'work')), [], `${dir}/work/work is empty`);
    const merged = join(root, `mnt-${l.cacheId.slice(0, 8)}`);
    execFileSync('mkdir', ['-p', merged]);
    const lower = readFileSync(join(dir, 'lower'), 'utf8').split(':').map((p) => join(root, 'overlay2', p)).join(':');
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${join(dir, 'diff')},workdir=${join(dir, 'work')}`, merged]);
    execFileSync('umount', [merged]);
  }
  // Every step image links to its parent, down to the base.
  let depth = 0;
  for (let cur = image; cur.parent; cur = (await store.images.get(cur.parent))!) depth++;
  assert.equal(depth, 5);

  const before = readdirSync(join(root, 'image/overlay2/imagedb/content/sha256')).length;
  const again = await runBuild({ root, contextDir: ctx, tags: ['test-image'] });
  assert.equal(again.id, id);
  assert.equal(readdirSync(join(root, 'image/overlay2/imagedb/content/sha256')).length, before);
  // Changing the copied file rebuilds from the COPY on.
  writeFileSync(join(ctx, 'startService.sh'), 'echo changed\n');
  const changed = await runBuild({ root, contextDir: ctx, tags: ['test-image'] });
  assert.notEqual(changed.id, id);
  assert.equal(readdirSync(join(root, 'image/overlay2/imagedb/content/sha256')).length, before + 2);
});

test('a RUN that changes nothing is an empty layer; WORKDIR makes a layer only for a new dir', { skip }, async (t) => {
  const { root, ctx, store } = await setup(t, { Dockerfile: 'FROM busybox:latest\nRUN true\nWORKDIR /tmp\nWORKDIR /srv/app\nRUN pwd > /where\n' });
  await runBuild({ root, contextDir: ctx, tags: ['t'] });
  const image = await store.require('t');
  assert.deepEqual(image.config.history.slice(1).map((h) => h.empty_layer ?? false), [true, true, false, false]);
  assert.equal(image.config.rootfs.diff_ids.length, 3);
  const top = (await store.layerChain(image)).pop()!;
  assert.equal(readFileSync(join(store.overlay.dirOf(top.cacheId), 'diff', 'where'), 'utf8'), '/srv/app\n');
});

test('multi-stage: COPY --from a stage; unneeded stages are skipped', { skip }, async (t) => {
  const { root, ctx, store } = await setup(t, {
    Dockerfile: 'FROM busybox:latest AS build\nRUN echo built > /artifact\nFROM busybox:latest AS broken\nRUN false\nFROM scratch\nCOPY --from=build /artifact /artifact\n',
  });
  await runBuild({ root, contextDir: ctx, tags: ['multi'] });
  const image = await store.require('multi');
  assert.equal(image.config.rootfs.diff_ids.length, 1);
  const [layer] = await store.layerChain(image);
  assert.equal(readFileSync(join(store.overlay.dirOf(layer!.cacheId), 'diff', 'artifact'), 'utf8'), 'built\n');
});

test('a failing RUN reports command, code and output tail; no tag moves, no mount or dir is left', { skip }, async (t) => {
  const { root, ctx, store } = await setup(t, { Dockerfile: 'FROM busybox:latest\nRUN echo oops >&2; exit 7\n' });
  const dirs = overlayDirs(root);
  await assert.rejects(runBuild({ root, contextDir: ctx, tags: ['busybox:latest'] }), (e: unknown) => {
    assert.ok(e instanceof StepFailedError);
    assert.equal(e.exitCode, 7);
    assert.match(e.message, /The command '\/bin\/sh -c echo oops >&2; exit 7' returned a non-zero code: 7/);
    assert.match(e.stderrTail, /oops/);
    return true;
  });
  assert.equal((await store.require('busybox:latest')).config.history.length, 1);
  assert.equal(overlayDirs(root), dirs);
  assert.equal(mountsUnder(root), 0);
  assert.deepEqual(readdirSync(join(root, 'tsbuild-tmp')), []);
});

test('bad input stops before any step: missing base image, missing COPY source', { skip }, async (t) => {
  const { root, ctx } = await setup(t, { Dockerfile: 'FROM busybox:latest\nRUN echo one\nFROM nosuch:image\n' });
  await assert.rejects(runBuild({ root, contextDir: ctx, tags: [] }), (e: unknown) => e instanceof DockerfileError && e.range.start.line === 3 && /nosuch:image.*tsbuild load/.test(e.message));
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nCOPY missing.txt /\n');
  await assert.rejects(runBuild({ root, contextDir: ctx, tags: [] }), (e: unknown) => e instanceof TsbuildError && /missing\.txt/.test(e.message));
});
