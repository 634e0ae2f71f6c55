/**
 * `--output`: the spec syntax (unknown types and keys are USAGE errors), and the
 * image written as an OCI layout directory (checked with skopeo), an OCI tar, a
 * docker-save tar and to stdout — each loaded back with the same image ID. No
 * root needed: the image is made in the store directly.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { TsbuildError } from '../../src/errors.js';
import { writeOutput } from '../../src/exec/build-output.js';
import { parseCacheFrom, parseCacheTo, parseOutput } from '../../src/exec/build-specs.js';
import type { ImageId } from '../../src/image/digest.js';
import { loadImages } from '../../src/store/docker-load.js';
import { ImageStore } from '../../src/store/store.js';
import { makeTestImage, runCli, skopeoAvailable } from '../support/registry.js';

const skip = existsSync('/bin/busybox') ? undefined : 'needs busybox-static (the test image)';
let work: string;
let store: ImageStore;
let id: ImageId;
const TAG = 'out/app:v1';

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'tsb-output-'));
  store = await ImageStore.open(join(work, 'root'));
  id = await makeTestImage(store, TAG);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const usage = (re: RegExp) => (e: unknown) => e instanceof TsbuildError && e.code === 'USAGE' && re.test(e.message);

test('--output, --cache-to and --cache-from specs: known types and keys, clear USAGE errors', () => {
  assert.deepEqual(parseOutput('type=oci,dest=out'), { type: 'oci', dest: 'out' });
  assert.deepEqual(parseOutput('type=oci,dest=out,tar=false'), { type: 'oci', dest: 'out', tar: false });
  assert.deepEqual(parseOutput('type=docker,dest=-'), { type: 'docker', dest: '-' });
  assert.throws(() => parseOutput('type=local,dest=x'), usage(/unsupported type "local" \(supported: oci, docker\)/));
  assert.throws(() => parseOutput('type=oci,dest=x,compression=zstd'), usage(/unknown key "compression"/));
  assert.throws(() => parseOutput('type=docker'), usage(/dest= is required/));
  assert.throws(() => parseOutput('./out'), usage(/bare path/));
  assert.throws(() => parseOutput('type=docker,dest=x,tar=false'), usage(/tar= applies to type=oci only/));
  assert.throws(() => parseOutput('type=oci,dest=-,tar=false'), usage(/cannot go to stdout/));
  assert.deepEqual(parseCacheTo('type=registry,ref=localhost:5000/c:1,mode=max'), { type: 'registry', ref: 'localhost:5000/c:1', mode: 'max', ignoreError: false });
  assert.deepEqual(parseCacheTo('type=registry,ref=r/c'), { type: 'registry', ref: 'r/c', mode: 'min', ignoreError: false });
  assert.throws(() => parseCacheTo('type=registry,ref=r/c,mode=all'), usage(/mode must be min or max/));
  assert.throws(() => parseCacheTo('type=local,dest=x'), usage(/unsupported type "local"/));
  assert.throws(() => parseCacheTo('type=registry'), usage(/ref= is required/));
  assert.throws(() => parseCacheTo('type=registry,ref=r/c@sha256:' + 'a'.repeat(64)), usage(/must be a tag/));
  assert.deepEqual(parseCacheFrom('r/c:1'), { type: 'registry', ref: 'r/c:1' });
  assert.deepEqual(parseCacheFrom('type=registry,ref=r/c:1'), { type: 'registry', ref: 'r/c:1' });
  assert.throws(() => parseCacheFrom('type=registry,ref=r/c,mode=max'), usage(/unknown key "mode"/));
});

async function loadedId(input: Readable): Promise<{ id: string; refs: string[] }> {
  const target = await ImageStore.open(mkdtempSync(join(work, 'load-')));
  const [loaded] = await loadImages(target, input);
  return loaded!;
}

test('type=oci as a directory (skopeo reads it), as a tar, type=docker as a tar and on stdout: all load with the same image ID', { skip, timeout: 60_000 }, async () => {
  const dir = join(work, 'layout');
  await writeOutput(store, id, [TAG], { type: 'oci', dest: dir, tar: false }, process.stdout);
  assert.deepEqual(readdirSync(dir).sort(), ['blobs', 'index.json', 'manifest.json', 'oci-layout']);
  if (skopeoAvailable()) {
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${dir}`], { encoding: 'utf8' })) as { config: { digest: string }; layers: unknown[] };
    assert.equal(raw.config.digest, id);
    assert.equal(raw.layers.length, 3);
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${dir}`], { encoding: 'utf8' })) as { Layers: string[]; Architecture: string };
    assert.deepEqual(info.Layers, (await store.images.require(id)).config.rootfs.diff_ids);
  }
  // An existing empty directory is used as the layout; a non-empty one is refused.
  const empty = join(work, 'empty');
  mkdirSync(empty);
  await writeOutput(store, id, [], { type: 'oci', dest: empty }, process.stdout);
  assert.ok(existsSync(join(empty, 'index.json')));
  await assert.rejects(writeOutput(store, id, [], { type: 'oci', dest: empty }, process.stdout), usage(/not empty/));

  const ociTar = join(work, 'img.oci.tar');
  await writeOutput(store, id, [TAG], { type: 'oci', dest: ociTar }, process.stdout);
  assert.equal((await loadedId(createReadStream(ociTar))).id, id);

  const dockerTar = join(work, 'out', 'img.docker.tar');
  await writeOutput(store, id, [TAG], { type: 'docker', dest: dockerTar }, process.stdout);
  assert.deepEqual(await loadedId(createReadStream(dockerTar)), { id, refs: [TAG] });
  assert.deepEqual(readdirSync(join(work, 'out')), ['img.docker.tar'], 'no temp file left');

  const pipe = new PassThrough();
  const loading = loadedId(pipe);
  await writeOutput(store, id, [], { type: 'docker', dest: '-' }, pipe);
  assert.equal((await loading).id, id);
});

test('tsbuild build rejects a bad --output before building', { timeout: 60_000 }, async () => {
  const ctx = mkdtempSync(join(tmpdir(), 'tsb-output-cli-'));
  try {
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\n');
    const r = await runCli(['build', '--root', join(ctx, 'root'), '--output', 'type=tar,dest=x.tar', ctx]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /--output type=tar,dest=x\.tar: unsupported type "tar"/);
    assert.ok(!existsSync(join(ctx, 'root')), 'nothing written');
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
});
