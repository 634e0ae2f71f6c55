// RUN --mount: a secret reaches the command but no layer, config, history or log;
// a cache mount survives between builds and never enters a layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { runBuild } from '../../src/exec/run-build.js';
import { ImageStore } from '../../src/store/store.js';
import { importRootfs } from '../../src/store/import.js';
import { TsbuildError } from '../../src/errors.js';

const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync('/bin/busybox') ? 'needs busybox-static' : undefined;

async function setup(t: { after(fn: () => void): void }): Promise<{ dir: string; root: string; ctx: string; store: ImageStore }> {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-mounts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  const ctx = join(dir, 'ctx');
  mkdirSync(ctx);
  execFileSync('bash', [new URL('../../examples/busybox-rootfs.sh', import.meta.url).pathname, join(dir, 'bb.tar')]);
  const store = await ImageStore.open(root);
  await importRootfs(store, Readable.from([readFileSync(join(dir, 'bb.tar'))]), { reference: 'busybox:latest', platform: { os: 'linux', architecture: 'amd64' } });
  return { dir, root, ctx, store };
}

/** grep -r over a whole tree (binary-safe). */
function treeContains(dir: string, needle: string): boolean {
  try {
    execFileSync('grep', ['-r', '-a', '-q', '-F', needle, dir]);
    return true;
  } catch {
    return false;
  }
}

test('a secret is readable in RUN and appears nowhere in the store or the output', { skip }, async (t) => {
  const { dir, root, ctx, store } = await setup(t);
  const secret = 'S3CR3T-' + Math.random().toString(36).slice(2);
  writeFileSync(join(dir, 'token'), secret);
  // The RUNs keep only a digest of what they read, so the test can check they saw the secret.
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nRUN --mount=type=secret,id=token md5sum < /run/secrets/token > /proof\nRUN --mount=type=secret,id=token,env=TOKEN,target=/s printf %s "$TOKEN" | md5sum > /proof2\n');
  let output = '';
  const quiet = () => undefined;
  await runBuild({
    root,
    contextDir: ctx,
    tags: ['s'],
    secrets: { token: { src: join(dir, 'token') } },
    events: { step: quiet, cached: quiet, running: quiet, output: (c) => void (output += c.toString()), removing: quiet, committed: quiet, warning: quiet, done: quiet },
  });
  const image = await store.require('s');
  const layers = await store.layerChain(image);
  const md5 = createHash('md5').update(secret).digest('hex');
  assert.match(readFileSync(join(store.overlay.dirOf(layers[1]!.cacheId), 'diff', 'proof'), 'utf8'), new RegExp(md5));
  assert.match(readFileSync(join(store.overlay.dirOf(layers[2]!.cacheId), 'diff', 'proof2'), 'utf8'), new RegExp(md5));
  assert.equal(existsSync(join(store.overlay.dirOf(layers[1]!.cacheId), 'diff', 'run', 'secrets')), false);
  assert.equal(output.includes(secret), false);
  assert.equal(treeContains(root, secret), false);
});

test('a missing secret fails unless required=false', { skip }, async (t) => {
  const { root, ctx } = await setup(t);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nRUN --mount=type=secret,id=nope true\n');
  await assert.rejects(runBuild({ root, contextDir: ctx, tags: [] }), (e: unknown) => e instanceof TsbuildError && /secret nope: not provided/.test(e.message));
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nRUN --mount=type=secret,id=nope,required=false true\n');
  await runBuild({ root, contextDir: ctx, tags: [] });
});

test('a cache mount keeps its files between builds and stays out of layers', { skip }, async (t) => {
  const { root, ctx, store } = await setup(t);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nARG N\nRUN --mount=type=cache,target=/var/cache/dl sh -c \'echo "$N" >> /var/cache/dl/log; cat /var/cache/dl/log > /seen\'\n');
  await runBuild({ root, contextDir: ctx, tags: ['c1'], buildArgs: { N: 'first' } });
  await runBuild({ root, contextDir: ctx, tags: ['c2'], buildArgs: { N: 'second' } });
  const image = await store.require('c2');
  const top = (await store.layerChain(image)).pop()!;
  const diff = join(store.overlay.dirOf(top.cacheId), 'diff');
  assert.equal(readFileSync(join(diff, 'seen'), 'utf8'), 'first\nsecond\n');
  assert.equal(existsSync(join(diff, 'var', 'cache', 'dl', 'log')), false);
});
