// analyze, layers, explain, compare and history on real builds (root + busybox-static).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeImage } from '../../src/analyze/analyze.js';
import { runBuild } from '../../src/exec/run-build.js';
import { buildText, cli, EXAMPLES, independentDive, skipBuilds, storeWithBusybox, type Fixture } from './support.js';

const IMAGES: Record<string, { dockerfile: string; files?: Record<string, string> }> = {
  // The same paths written again and again: overwritten files and copy-ups of appended ones.
  overlap: {
    dockerfile: `FROM busybox:local
RUN mkdir -p /data && head -c 100000 /dev/zero > /data/a && echo one > /data/b
RUN head -c 200000 /dev/zero | tr '\\0' x > /data/a && echo two >> /data/b
RUN echo three >> /data/b && head -c 5000 /dev/zero > /data/c && echo b > /etc/motd
`,
  },
  // A big file deleted later; a base file deleted and another overwritten.
  deleted: {
    dockerfile: `FROM busybox:local
RUN mkdir -p /x && head -c 300000 /dev/urandom > /x/big && echo small > /x/small
RUN rm /x/big
RUN rm /etc/group && echo 'root:x:0:' > /etc/group.new && echo changed >> /etc/passwd
`,
  },
  // A deleted directory weighs what was under it (for dive, on the dir's own path); it comes back empty.
  'deleted-dir': {
    dockerfile: `FROM busybox:local
RUN mkdir -p /d/e/f && head -c 1000 /dev/zero > /d/e/f/1 && head -c 2000 /dev/zero > /d/e/2 && ln -s 1 /d/e/f/link && mkdir /d/empty
RUN rm -rf /d/e /d/empty
RUN mkdir /d/e && echo back > /d/again
`,
  },
  // COPY then chmod/chown/touch: copy-ups of unchanged contents.
  copyup: {
    dockerfile: `FROM busybox:local
COPY payload /opt/payload
RUN chmod 755 /opt/payload
RUN chown 1000:1000 /opt/payload && cp /bin/busybox /opt/bb && ln /opt/bb /opt/bb2
RUN rm /opt/bb
`,
    files: { payload: 'p'.repeat(50000) },
  },
  // rm -rf + mkdir of a lower dir: an opaque dir (dive ignores opaque markers).
  opaque: {
    dockerfile: `FROM busybox:local
RUN mkdir -p /o/sub && head -c 7000 /dev/zero > /o/old && echo keep > /o/sub/keep
RUN rm -rf /o && mkdir /o && echo new > /o/new
RUN echo again > /o/new
`,
  },
  // Three versions of one path, a deleted base symlink.
  triple: {
    dockerfile: `FROM busybox:local
RUN echo a > /etc/motd && cp /bin/busybox /tmp/bb
RUN echo bb > /etc/motd && rm /tmp/bb
RUN echo ccc > /etc/motd && rm /bin/vi
`,
  },
};

async function diffDirs(f: Fixture, tag: string): Promise<string[]> {
  const image = await f.store.require(tag);
  return (await f.store.layerChain(image)).map((l) => join(f.store.overlay.dirOf(l.cacheId), 'diff'));
}

test('efficiency and wasted bytes equal an independent computation on six images', { skip: skipBuilds }, async (t) => {
  const f = await storeWithBusybox(t);
  for (const [name, spec] of Object.entries(IMAGES)) await buildText(f, name, spec.dockerfile, spec.files);
  for (const name of Object.keys(IMAGES)) {
    const { json } = await analyzeImage(f.store, name);
    const ind = independentDive(await diffDirs(f, name));
    assert.equal(json.efficiency, ind.efficiency, `${name}: efficiency`);
    assert.equal(json.wastedBytes, ind.wastedBytes, `${name}: wasted bytes`);
    if (name !== 'opaque') assert.ok(json.wastedBytes > 0, `${name} wastes something`);
  }
  // The definitions, checked on known numbers.
  const del = (await analyzeImage(f.store, 'deleted')).json;
  assert.equal(del.inefficiencies.find((i) => i.path === '/x/big')?.cumulativeSize, 300000);
  const dir = (await analyzeImage(f.store, 'deleted-dir')).json;
  assert.equal(dir.inefficiencies.find((i) => i.path === '/d/e/f/1'), undefined);
  assert.deepEqual(dir.inefficiencies.find((i) => i.path === '/d/e'), { path: '/d/e', count: 2, cumulativeSize: 3000, layers: [2, 3] });
  assert.equal(dir.reclaimableBytes, 3000);
  const triple = (await analyzeImage(f.store, 'triple')).json;
  assert.deepEqual(triple.inefficiencies.find((i) => i.path === '/etc/motd'), { path: '/etc/motd', count: 3, cumulativeSize: 2 + 3 + 4, layers: [1, 2, 3] });
  const up = (await analyzeImage(f.store, 'copyup')).json;
  const advice = up.advice.filter((a) => a.kind === 'copy-up');
  assert.equal(advice.length, 2);
  assert.equal(advice[0]!.flags, '--chmod=755');
  assert.equal(advice[0]!.bytesSaved, 50000);
  assert.equal(advice[1]!.flags, '--chown=1000:1000');
  assert.match(advice[0]!.message, /use COPY --chmod=755 on that line/);
  // /opt/bb is deleted but its hardlink /opt/bb2 keeps the data: only the payload copies are dead.
  assert.equal(up.reclaimableBytes, 100000);
  assert.equal(up.advice.filter((a) => a.kind !== 'copy-up').length, 0);
  assert.ok(up.inefficiencies.some((i) => i.path === '/opt/bb'), 'dive still counts it');
});

test('run-chaining: the unchained waste is the bytes removed, the chained one has none; the advice names lines 4 and 6', { skip: skipBuilds }, async (t) => {
  const f = await storeWithBusybox(t);
  const ctx = join(EXAMPLES, 'run-chaining');
  for (const v of ['unchained', 'chained']) await runBuild({ root: f.root, contextDir: ctx, dockerfile: join(ctx, `Dockerfile.${v}`), tags: [`rc:${v}`] });
  const un = (await analyzeImage(f.store, 'rc:unchained', { dockerfile: { path: join(ctx, 'Dockerfile.unchained') } })).json;
  const ch = (await analyzeImage(f.store, 'rc:chained', { dockerfile: { path: join(ctx, 'Dockerfile.chained') } })).json;
  // The bytes actually removed: the file the third RUN deletes, as it lies in the first RUN's layer.
  const removed = statSync(join(f.store.overlay.dirOf(un.layers[1]!.cacheId), 'diff', 'tmp', 'toolchain.bin')).size;
  assert.equal(removed, 8388608);
  assert.ok(Math.abs(un.wastedBytes - removed) <= removed * 0.01, `${un.wastedBytes} vs ${removed}`);
  assert.ok(Math.abs(un.image.size - ch.image.size - removed) <= removed * 0.01);
  assert.equal(ch.wastedBytes, 0);
  assert.equal(ch.advice.length, 0);
  const merge = un.advice.filter((a) => a.kind === 'merge-run');
  assert.equal(merge.length, 1);
  assert.equal(merge[0]!.from.line, 4);
  assert.equal(merge[0]!.to.line, 6);
  assert.equal(merge[0]!.bytesSaved, removed);
  assert.deepEqual(merge[0]!.paths, [{ path: '/tmp/toolchain.bin', size: removed, how: 'deleted' }]);

  // --ci: exit 1 past the limits, 0 within them.
  assert.equal((await cli(['analyze', '--root', f.root, 'rc:unchained', '--ci', '--lowest-efficiency', '0.5'])).code, 1);
  assert.equal((await cli(['analyze', '--root', f.root, 'rc:unchained', '--ci', '--lowest-efficiency', '0.1', '--highest-wasted-bytes', '8MB', '--highest-user-wasted-percent', 'disabled'])).code, 1);
  const pass = await cli(['analyze', '--root', f.root, 'rc:unchained', '--ci', '--lowest-efficiency', '0.1', '--highest-wasted-bytes', '9MB', '--highest-user-wasted-percent', 'disabled', '--format', 'json']);
  assert.equal(pass.code, 0);
  assert.equal(JSON.parse(pass.stdout).ci.pass, true);
  assert.equal((await cli(['analyze', '--root', f.root, 'rc:chained', '--ci'])).code, 0);
});

test("explain's printed commands reproduce the image ID and every chainID (and diffID with tar-split)", { skip: skipBuilds }, async (t) => {
  const f = await storeWithBusybox(t);
  await runBuild({ root: f.root, contextDir: join(EXAMPLES, 'test-image'), tags: ['test-image'] });
  const { code, stdout } = await cli(['explain', '--root', f.root, 'test-image']);
  assert.equal(code, 0);
  const lines = stdout.split('\n');
  const image = await f.store.require('test-image');
  const chain = await f.store.layerChain(image);
  const expectedChains = new Set(chain.map((l) => l.chainId.slice(7)));
  const hasTarSplit = spawnSync('sh', ['-c', 'command -v tar-split']).status === 0;
  let chains = 0;
  let ids = 0;
  let diffs = 0;
  for (const [i, line] of lines.entries()) {
    const m = line.match(/^\s+\$ (.*)$/);
    if (!m) continue;
    const expected = lines[i + 1]!.trim();
    if (m[1]!.startsWith('tar-split') && !hasTarSplit) continue;
    const got = execFileSync('bash', ['-c', m[1]!], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split(/\s+/)[0];
    assert.equal(got, expected, m[1]);
    if (m[1]!.startsWith('sha256sum')) ids++;
    else if (m[1]!.startsWith('tar-split')) diffs++;
    else {
      assert.ok(expectedChains.delete(expected), `${expected} is a chainID of the image`);
      chains++;
    }
  }
  assert.equal(ids, 1);
  assert.equal(image.id.slice(7), lines.find((l) => l.includes('ID:'))!.trim().split(/\s+/)[1]!.slice(7));
  assert.equal(chains, chain.length);
  assert.equal(expectedChains.size, 0);
  if (hasTarSplit) assert.equal(diffs, chain.length);
  // The rest of the lesson is there with the real values.
  assert.match(stdout, /#1 LABEL\s+empty .*empty_layer: LABEL only edits the config/);
  assert.match(stdout, /#5 CMD\s+empty/);
  assert.match(stdout, new RegExp(`cache-id    ${chain[1]!.cacheId}`));
  assert.match(stdout, /4 non-empty entries = 4 diff_ids/);
  const json = JSON.parse((await cli(['explain', '--root', f.root, 'test-image', '--format', 'json'])).stdout);
  assert.equal(json.schema, 'tsbuild.explain/v1');
  assert.equal(json.parents.length, 6);
});

test('layers, analyze, compare and history --format json: documented fields', { skip: skipBuilds }, async (t) => {
  const f = await storeWithBusybox(t);
  const ctx = join(EXAMPLES, 'test-image');
  await runBuild({ root: f.root, contextDir: ctx, tags: ['test-image'] });
  const df = join(ctx, 'Dockerfile');

  const layers = JSON.parse((await cli(['layers', '--root', f.root, 'test-image', '--dockerfile', df, '--format', 'json'])).stdout);
  assert.equal(layers.schema, 'tsbuild.layers/v1');
  assert.deepEqual(
    layers.steps.map((s: { instruction: string; line: number | null; emptyLayer: boolean; added: number; deleted: number; inherited: boolean }) => [s.instruction, s.line, s.emptyLayer, s.added, s.deleted, s.inherited]),
    [
      ['', null, false, 277, 0, true],
      ['LABEL', 3, true, 0, 0, false],
      ['RUN', 4, false, 1, 0, false],
      ['RUN', 5, false, 1, 1, false],
      ['COPY', 6, false, 1, 0, false],
      ['CMD', 7, true, 0, 0, false],
    ],
  );
  const run = layers.steps[3];
  for (const k of ['diffId', 'chainId', 'cacheId', 'size', 'contentSize', 'modified', 'wastedBytes', 'source', 'createdBy']) assert.ok(k in run, k);
  assert.equal(run.size, 6);
  assert.equal(run.source.text, 'RUN rm /hello.txt && echo world > /world.txt');

  const an = JSON.parse((await cli(['analyze', '--root', f.root, 'test-image', '--dockerfile', df, '--format', 'json'])).stdout);
  assert.equal(an.schema, 'tsbuild.analyze/v1');
  assert.equal(an.wastedBytes, 6);
  assert.equal(an.reclaimableBytes, 6);
  assert.equal(typeof an.efficiency, 'number');
  assert.deepEqual(
    an.layers.map((l: { wastedBytes: number }) => l.wastedBytes),
    [0, 6, 0, 0],
  );
  assert.equal(an.advice.length, 1);
  assert.deepEqual([an.advice[0].kind, an.advice[0].from.line, an.advice[0].to.line, an.advice[0].bytesSaved], ['merge-run', 4, 5, 6]);
  const text = (await cli(['analyze', '--root', f.root, 'test-image'])).stdout;
  assert.match(text, /Wasted bytes:\s+6 \(6B\)/);
  assert.match(text, /\/hello\.txt/);

  const cmp = JSON.parse((await cli(['compare', '--root', f.root, 'busybox:local', 'test-image', '--format', 'json'])).stdout);
  assert.equal(cmp.schema, 'tsbuild.compare/v1');
  assert.equal(cmp.layers.length, 4);
  assert.equal(cmp.layers[0].shared, true);
  assert.equal(cmp.layers[1].a, null);
  assert.equal(cmp.delta.layers, 3);
  assert.equal(cmp.delta.size, 25);
  assert.match((await cli(['compare', '--root', f.root, 'busybox:local', 'test-image'])).stdout, /shared layers \(same chainID at the same position\): 1/);

  const hist = (await cli(['history', '--root', f.root, 'test-image', '--format', 'json'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(hist.length, 6);
  assert.deepEqual(Object.keys(hist[0]), ['Comment', 'CreatedAt', 'CreatedBy', 'CreatedSince', 'ID', 'Size', 'SizeBytes', 'Tags']);
  assert.deepEqual(
    hist.map((h: { SizeBytes: number }) => h.SizeBytes),
    [0, 13, 6, 6, 0, 1984291],
  );
  assert.equal(hist[0].ID.length, 12);
  const full = (await cli(['history', '--root', f.root, 'test-image', '--format', 'json', '--no-trunc'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(full[0].ID, (await f.store.require('test-image')).id);
  assert.match((await cli(['layers', '--root', f.root, 'test-image'])).stdout, /CHAIN ID/);
});
