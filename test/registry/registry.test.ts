/**
 * Pull and push against Debian's docker-registry (distribution 2.8) on 127.0.0.1,
 * started and stopped (by pid) by these tests: schema2 and OCI manifests, manifest
 * lists and OCI indexes with platform selection, gzip/zstd/plain layers, chunked and
 * monolithic uploads, HEAD and cross-repository mounts, distribution/ metadata and
 * digest references, skopeo's view of what we pushed, and bad input — corrupt and
 * truncated blobs, 4xx/5xx/429 (with retries), wrong diffIDs, no matching platform —
 * each leaving the store as it was.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ImageStore } from '../../src/store/store.js';
import { layerTar } from '../../src/store/layer-stream.js';
import { pull, pushImage, plainProgress, RegistryError, type PullOptions } from '../../src/registry/index.js';
import { MEDIA } from '../../src/registry/media.js';
import type { ImageId } from '../../src/image/digest.js';
import { makeTestImage, registryUnavailableReason, skopeoAvailable, startFaultProxy, startRegistry, type Registry } from '../support/registry.js';

const skip = registryUnavailableReason();
const FAST: PullOptions = { retry: { attempts: 3, baseDelayMs: 10 } };

let reg: Registry;
let work: string;
let src: ImageStore;
let srcId: ImageId;
const REPO = 'tsb/app';

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  work = mkdtempSync(join(tmpdir(), 'tsb-registry-'));
  src = await ImageStore.open(join(work, 'src'));
  srcId = await makeTestImage(src, `${reg.host}/${REPO}:v1`);
});

after(async () => {
  if (skip) return;
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

let stores = 0;
async function freshStore(): Promise<ImageStore> {
  return ImageStore.open(join(work, `store-${++stores}`));
}

function sha256(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function lines(): { out: string[]; progress: ReturnType<typeof plainProgress> } {
  const out: string[] = [];
  return { out, progress: plainProgress((s) => out.push(...s.split('\n').filter((l) => l))) };
}

/** What a store holds: images, layers, overlay dirs, references, scratch leftovers. */
function storeState(store: ImageStore): Record<string, unknown> {
  const root = store.root;
  const ls = (p: string) => (existsSync(p) ? readdirSync(p).sort() : []);
  const repos = join(store.layout.repositoriesJson);
  return {
    images: ls(store.layout.contentDir),
    layers: ls(store.layout.layersDir),
    overlay: ls(store.layout.overlayDir),
    repositories: existsSync(repos) ? readFileSync(repos, 'utf8') : '',
    distribution: ls(join(store.layout.imageRoot, 'distribution')),
    scratch: ls(join(root, 'tsbuild-tmp')),
    layerTmp: ls(store.layout.layerTmpDir),
  };
}

async function registryGet(path: string, accept?: string): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const res = await fetch(`${reg.url}${path}`, accept ? { headers: { Accept: accept } } : {});
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

/** Uploads a blob straight to the registry (monolithic), for hand-made fixtures. */
async function rawBlob(repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const start = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const loc = new URL(start.headers.get('location')!, reg.url);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: data, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(put.status, 201, await put.text());
  return digest;
}

async function rawManifest(repo: string, ref: string, mediaType: string, body: Buffer | object): Promise<string> {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: bytes, headers: { 'Content-Type': mediaType } });
  assert.equal(res.status, 201, await res.text());
  return sha256(bytes);
}

async function layerBytes(store: ImageStore, id: ImageId): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const l of await store.layerChain(await store.images.require(id))) {
    const parts: Buffer[] = [];
    for await (const c of (await layerTar(store, l)).open()) parts.push(c as Buffer);
    out.push(Buffer.concat(parts));
  }
  return out;
}

function isRegistryError(code: string, re?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof RegistryError, `expected a RegistryError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  };
}

let pushed: { digest: string; manifest: Buffer; layers: { digest: string; size: number }[]; config: string } | undefined;

test('push (chunked and monolithic uploads) then pull: same image, byte-exact layers, distribution metadata, digest references', { skip, timeout: 120_000 }, async () => {
  // Through a logging proxy, to see the upload requests.
  const proxy = await startFaultProxy(reg.url);
  try {
    const viaProxy = `${proxy.host}/${REPO}:v1`;
    await src.tag(viaProxy, srcId);
    const p = lines();
    const r = await pushImage(src, viaProxy, { progress: p.progress, chunkSize: 256 << 10 });
    assert.equal(r.mediaType, MEDIA.dockerManifest);
    assert.equal(p.out[0], `The push refers to repository [${proxy.host}/${REPO}]`);
    assert.equal(p.out.filter((l) => l.endsWith(': Pushed')).length, 3, p.out.join('\n'));
    assert.equal(p.out.at(-1), `v1: digest: ${r.digest} size: ${r.manifest.length}`);
    const patches = proxy.log.filter((l) => l.startsWith('PATCH'));
    assert.ok(patches.length >= 4, `the 1 MB base layer goes in 256 KiB chunks: ${proxy.log.join('\n')}`);
    assert.ok(proxy.log.some((l) => /^PUT \/v2\/tsb\/app\/blobs\/uploads\/.*digest=sha256/.test(l)), 'monolithic PUTs for the small blobs');
    assert.ok(proxy.log.filter((l) => l.startsWith('HEAD')).length >= 4, 'HEAD before each upload');
    const m = JSON.parse(r.manifest.toString()) as { config: { digest: string }; layers: { digest: string; size: number; mediaType: string }[] };
    assert.equal(m.config.digest, srcId);
    pushed = { digest: r.digest, manifest: r.manifest, layers: m.layers, config: m.config.digest };
    // Deterministic gzip: the same layer compresses to the same blob.
    const again = gzipSync((await layerBytes(src, srcId))[1]!);
    assert.equal(sha256(again), m.layers[1]!.digest);
  } finally {
    await proxy.stop();
  }

  // The registry has exactly what we computed.
  const got = await registryGet(`/v2/${REPO}/manifests/v1`, MEDIA.dockerManifest);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, pushed.manifest);
  assert.equal(got.headers.get('docker-content-digest'), pushed.digest);
  // tsbuild recorded the digest reference and the blobs' sources, as dockerd does after a push.
  const srcRepos = JSON.parse(readFileSync(src.layout.repositoriesJson, 'utf8')).Repositories;
  assert.ok(Object.values(srcRepos).some((refs) => Object.keys(refs as object).some((k) => k.endsWith(`/${REPO}@${pushed!.digest}`))));

  // Pull into a fresh store.
  const b = await freshStore();
  const p = lines();
  const res = await pull(b, `${reg.host}/${REPO}:v1`, { progress: p.progress });
  assert.equal(res.image.id, srcId);
  assert.equal(res.digest, pushed.digest);
  assert.equal(res.downloaded, true);
  assert.deepEqual(p.out.slice(0, 1), ['v1: Pulling from tsb/app']);
  for (const l of pushed.layers) {
    const id = l.digest.slice(7, 19);
    for (const status of ['Pulling fs layer', 'Verifying Checksum', 'Download complete', 'Pull complete']) assert.ok(p.out.includes(`${id}: ${status}`), `${id}: ${status}\n${p.out.join('\n')}`);
  }
  assert.deepEqual(p.out.slice(-2), [`Digest: ${pushed.digest}`, `Status: Downloaded newer image for ${reg.host}/${REPO}:v1`]);
  assert.deepEqual(await layerBytes(b, res.image.id), await layerBytes(src, srcId), 'every layer tar rebuilds byte for byte');

  // repositories.json: the tag and name@sha256:<manifest digest>.
  const repos = JSON.parse(readFileSync(b.layout.repositoriesJson, 'utf8')).Repositories as Record<string, Record<string, string>>;
  assert.deepEqual(repos, { [`${reg.host}/${REPO}`]: { [`${reg.host}/${REPO}:v1`]: srcId, [`${reg.host}/${REPO}@${pushed.digest}`]: srcId } });

  // distribution/: diffid-by-digest and v2metadata-by-diffid, dockerd's modes, no newline.
  const dist = join(b.layout.imageRoot, 'distribution');
  assert.equal(statSync(dist).mode & 0o777, 0o700);
  const diffIds = res.image.config.rootfs.diff_ids;
  for (let i = 0; i < diffIds.length; i++) {
    const blob: string = pushed.layers[i]!.digest;
    const f1 = join(dist, 'diffid-by-digest', 'sha256', blob.slice(7));
    assert.equal(readFileSync(f1, 'utf8'), diffIds[i]);
    assert.equal(statSync(f1).mode & 0o777, 0o644);
    assert.equal(statSync(join(dist, 'diffid-by-digest', 'sha256')).mode & 0o777, 0o755);
    const f2 = join(dist, 'v2metadata-by-diffid', 'sha256', diffIds[i]!.slice(7));
    assert.equal(readFileSync(f2, 'utf8'), JSON.stringify([{ Digest: blob, SourceRepository: `${reg.host}/${REPO}`, HMAC: '' }]));
  }
  assert.deepEqual(storeState(b)['scratch'], [], 'the scratch dir is gone');

  // Pulling again downloads nothing.
  const p2 = lines();
  const res2 = await pull(b, `${reg.host}/${REPO}:v1`, { progress: p2.progress });
  assert.equal(res2.downloaded, false);
  assert.equal(p2.out.filter((l) => l.endsWith('Already exists')).length, 3);
  assert.equal(p2.out.at(-1), `Status: Image is up to date for ${reg.host}/${REPO}:v1`);
});

test('push again: HEAD finds every layer; another repository mounts them; skopeo agrees with the manifest', { skip, timeout: 120_000 }, async () => {
  assert.ok(pushed, 'needs the first test');
  const proxy = await startFaultProxy(reg.url);
  try {
    const p = lines();
    const name = `${proxy.host}/${REPO}:v1`;
    await src.tag(name, srcId);
    const r = await pushImage(src, name, { progress: p.progress });
    assert.equal(r.digest, pushed.digest);
    assert.equal(p.out.filter((l) => l.endsWith(': Layer already exists')).length, 3, p.out.join('\n'));
    assert.equal(proxy.log.filter((l) => l.startsWith('POST') || l.startsWith('PATCH')).length, 0, proxy.log.join('\n'));

    const other = `${proxy.host}/tsb/other:latest`;
    await src.tag(other, srcId);
    const p2 = lines();
    const r2 = await pushImage(src, other, { progress: p2.progress });
    assert.equal(r2.digest, pushed.digest);
    assert.equal(p2.out.filter((l) => l.endsWith(': Mounted from tsb/app')).length, 3, p2.out.join('\n'));
    assert.ok(proxy.log.some((l) => /^POST \/v2\/tsb\/other\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=tsb%2Fapp -> 201/.test(l)), proxy.log.join('\n'));
  } finally {
    await proxy.stop();
  }

  if (!skopeoAvailable()) return;
  const skopeo = (args: string[]) => execFileSync('skopeo', [...args, '--tls-verify=false', `docker://${reg.host}/${REPO}:v1`], { encoding: 'utf8' });
  assert.equal(skopeo(['inspect', '--raw']), pushed.manifest.toString());
  const info = JSON.parse(skopeo(['inspect'])) as { Digest: string; Layers: string[]; Architecture: string; Os: string };
  assert.equal(info.Digest, pushed.digest);
  assert.deepEqual(info.Layers, pushed.layers.map((l) => l.digest));
  assert.equal(info.Architecture, 'amd64');
  assert.equal(skopeo(['inspect', '--config', '--raw']), (await src.images.require(srcId)).bytes.toString());
});

test('OCI manifests (--oci) push and pull; a pull by digest records only the digest reference', { skip, timeout: 120_000 }, async () => {
  const name = `${reg.host}/tsb/oci:v1`;
  await src.tag(name, srcId);
  const r = await pushImage(src, name, { oci: true });
  assert.equal(r.mediaType, MEDIA.ociManifest);
  const m = JSON.parse(r.manifest.toString()) as { mediaType: string; config: { mediaType: string }; layers: { mediaType: string }[] };
  assert.equal(m.config.mediaType, MEDIA.ociConfig);
  assert.deepEqual(new Set(m.layers.map((l) => l.mediaType)), new Set([MEDIA.ociLayerGzip]));
  const b = await freshStore();
  const res = await pull(b, `${reg.host}/tsb/oci@${r.digest}`);
  assert.equal(res.image.id, srcId);
  const repos = JSON.parse(readFileSync(b.layout.repositoriesJson, 'utf8')).Repositories;
  assert.deepEqual(repos, { [`${reg.host}/tsb/oci`]: { [`${reg.host}/tsb/oci@${r.digest}`]: srcId } });
  if (skopeoAvailable()) {
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/tsb/oci:v1`], { encoding: 'utf8' });
    assert.equal(raw, r.manifest.toString());
  }
});

test('manifest lists and OCI indexes: the host platform, --platform, and no match leaves the store as it was', { skip, timeout: 120_000 }, async () => {
  assert.ok(pushed, 'needs the first test');
  // An arm64 twin of the test image: the same layers, another config.
  const config = JSON.parse((await src.images.require(srcId)).bytes.toString()) as Record<string, unknown>;
  const armConfig = Buffer.from(JSON.stringify({ ...config, architecture: 'arm64', variant: 'v8' }));
  const armConfigDigest = await rawBlob(REPO, armConfig);
  const armManifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.dockerManifest, config: { mediaType: MEDIA.dockerConfig, size: armConfig.length, digest: armConfigDigest }, layers: pushed.layers }));
  const armDigest = await rawManifest(REPO, sha256(armManifest), MEDIA.dockerManifest, armManifest);
  const list = {
    schemaVersion: 2,
    mediaType: MEDIA.dockerList,
    manifests: [
      { mediaType: MEDIA.dockerManifest, size: armManifest.length, digest: armDigest, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
      { mediaType: MEDIA.dockerManifest, size: pushed.manifest.length, digest: pushed.digest, platform: { architecture: 'amd64', os: 'linux' } },
    ],
  };
  const listDigest = await rawManifest(REPO, 'multi', MEDIA.dockerList, list);

  const b = await freshStore();
  const host = await pull(b, `${reg.host}/${REPO}:multi`, { platform: 'linux/amd64' });
  assert.equal(host.image.id, srcId);
  assert.equal(host.digest, listDigest, 'the digest recorded is the list\'s');
  const arm = await pull(b, `${reg.host}/${REPO}:multi`, { platform: 'linux/arm64' });
  assert.equal(arm.image.id, armConfigDigest);
  assert.equal(arm.image.config.architecture, 'arm64');
  assert.equal((await b.require(`${reg.host}/${REPO}:multi`)).id, armConfigDigest, 'the tag moved to the arm64 image');

  // An OCI index works the same way.
  const ociList = { ...list, mediaType: MEDIA.ociIndex, manifests: list.manifests.map((d) => ({ ...d })) };
  await rawManifest(REPO, 'multi-oci', MEDIA.ociIndex, ociList);
  const c = await freshStore();
  assert.equal((await pull(c, `${reg.host}/${REPO}:multi-oci`, { platform: 'linux/arm64/v8' })).image.id, armConfigDigest);

  // No entry for s390x: an error naming what there is; the store is untouched.
  const before = storeState(c);
  await assert.rejects(pull(c, `${reg.host}/${REPO}:multi`, { platform: 'linux/s390x' }), isRegistryError('REGISTRY_PLATFORM', /no matching manifest for linux\/s390x in the manifest list entries \(available: linux\/arm64\/v8, linux\/amd64\)/));
  assert.deepEqual(storeState(c), before);
  // A single-platform manifest that is not the platform asked for.
  await assert.rejects(pull(c, `${reg.host}/${REPO}:v1`, { platform: 'linux/arm64' }), isRegistryError('REGISTRY_PLATFORM', /was found but does not match the specified platform: wanted linux\/arm64, actual: linux\/amd64/));
  assert.deepEqual(storeState(c), before);
});

test('layers compressed with zstd, gzip or not at all; pushing such an image again recompresses to gzip', { skip, timeout: 120_000 }, async () => {
  const tars = await layerBytes(src, srcId);
  const zstd = spawnSync('zstd', ['-q', '-c', '-3'], { input: tars[1]! });
  assert.equal(zstd.status, 0, 'zstd is installed (Debian package zstd)');
  const blobs = [
    { data: tars[0]!, mediaType: MEDIA.ociLayerTar },
    { data: zstd.stdout, mediaType: MEDIA.ociLayerZstd },
    { data: gzipSync(tars[2]!), mediaType: MEDIA.ociLayerGzip },
  ];
  const layers = [];
  for (const blob of blobs) layers.push({ mediaType: blob.mediaType, size: blob.data.length, digest: await rawBlob('tsb/mixed', blob.data) });
  const configBytes = (await src.images.require(srcId)).bytes;
  const configDigest = await rawBlob('tsb/mixed', configBytes);
  await rawManifest('tsb/mixed', 'v1', MEDIA.ociManifest, { schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, size: configBytes.length, digest: configDigest }, layers });

  const b = await freshStore();
  const res = await pull(b, `${reg.host}/tsb/mixed:v1`);
  assert.equal(res.image.id, srcId);
  assert.deepEqual(await layerBytes(b, srcId), tars);

  // Its distribution/ metadata names the zstd and plain blobs; a push must not reuse those as gzip.
  const name = `${reg.host}/tsb/mixed-copy:v1`;
  await b.tag(name, srcId);
  const p = lines();
  const r = await pushImage(b, name, { progress: p.progress });
  const m = JSON.parse(r.manifest.toString()) as { layers: { mediaType: string; digest: string }[] };
  assert.deepEqual(m.layers.map((l) => l.mediaType), [MEDIA.dockerLayerGzip, MEDIA.dockerLayerGzip, MEDIA.dockerLayerGzip]);
  assert.notEqual(m.layers[0]!.digest, layers[0]!.digest);
  assert.notEqual(m.layers[1]!.digest, layers[1]!.digest);
  assert.equal(m.layers[2]!.digest, layers[2]!.digest, 'the gzip layer is mounted, not re-uploaded');
  assert.ok(p.out.includes(`${srcImageDiff(res.image.config.rootfs.diff_ids[2]!)}: Mounted from tsb/mixed`), p.out.join('\n'));
  const c = await freshStore();
  assert.equal((await pull(c, name)).image.id, srcId);
});

function srcImageDiff(d: string): string {
  return d.slice(7, 19);
}

test('a corrupted blob in the registry is detected and rejected; nothing is stored', { skip, timeout: 120_000 }, async () => {
  // Its own upper layers: blobs are shared between repositories in the registry's storage.
  const name = `${reg.host}/tsb/corrupt:v1`;
  await makeTestImage(src, name, 'corrupt me\n');
  const r = await pushImage(src, name);
  const m = JSON.parse(r.manifest.toString()) as { layers: { digest: string }[] };
  // The registry serves what its storage holds: flip one byte of the middle layer there.
  const file = reg.blobFile(m.layers[1]!.digest);
  const data = readFileSync(file);
  const k = data.length >> 1;
  data[k] = data[k]! ^ 0x55;
  writeFileSync(file, data);
  const b = await freshStore();
  const before = storeState(b);
  await assert.rejects(pull(b, name, FAST), isRegistryError('REGISTRY_DIGEST', new RegExp(`filesystem layer verification failed for digest ${m.layers[1]!.digest}`)));
  assert.deepEqual(storeState(b), before, 'no image, no layer, no tag, no scratch files');
  // A store that has the base layer keeps it, and gains nothing else.
  await pull(b, `${reg.host}/${REPO}:v1`);
  const withImage = storeState(b);
  await assert.rejects(pull(b, name, FAST), isRegistryError('REGISTRY_DIGEST'));
  assert.deepEqual(storeState(b), withImage);
});

test('a layer whose content is not the config\'s diffID is rejected after extraction; nothing is stored', { skip, timeout: 120_000 }, async () => {
  assert.ok(pushed, 'needs the first test');
  const swapped = { schemaVersion: 2, mediaType: MEDIA.dockerManifest, config: { mediaType: MEDIA.dockerConfig, size: (await src.images.require(srcId)).bytes.length, digest: pushed.config }, layers: [pushed.layers[1], pushed.layers[0], pushed.layers[2]] };
  await rawManifest(REPO, 'swapped', MEDIA.dockerManifest, swapped);
  const b = await freshStore();
  const before = storeState(b);
  await assert.rejects(pull(b, `${reg.host}/${REPO}:swapped`, FAST), isRegistryError('REGISTRY_DIGEST', /does not match the image config: invalid diffID for layer: expected sha256:/));
  assert.deepEqual(storeState(b), before);
});

test('HTTP failures: truncated blobs, 5xx and 429 retried with backoff, 404, 403, a corrupt manifest', { skip, timeout: 120_000 }, async () => {
  assert.ok(pushed, 'needs the first test');
  const proxy = await startFaultProxy(reg.url);
  try {
    const name = `${proxy.host}/${REPO}:v1`;
    const bigLayer = pushed.layers[0]!.digest;
    const blobPath = new RegExp(`^/v2/tsb/app/blobs/${bigLayer}`);

    // Cut short every time: a clear error after the retries, nothing stored.
    proxy.rules.splice(0, proxy.rules.length, { method: 'GET', path: blobPath, fault: { truncateAfter: 1000 } });
    let b = await freshStore();
    let before = storeState(b);
    await assert.rejects(pull(b, name, FAST), isRegistryError('REGISTRY_TRUNCATED', new RegExp(`blob ${bigLayer} truncated`)));
    assert.deepEqual(storeState(b), before);
    assert.equal(proxy.log.filter((l) => blobPath.test(l.split(' ')[1]!)).length, 3, 'three tries');

    // Cut short once: the retry succeeds.
    proxy.log.length = 0;
    proxy.rules.splice(0, proxy.rules.length, { method: 'GET', path: blobPath, fault: { truncateAfter: 1000 }, times: 1 });
    assert.equal((await pull(b, name, FAST)).image.id, srcId);

    // 503 twice and a 429 with Retry-After on the manifest: retried.
    proxy.log.length = 0;
    proxy.rules.splice(0, proxy.rules.length, { method: 'GET', path: /manifests\/v1$/, fault: { status: 503 }, times: 2 });
    b = await freshStore();
    assert.equal((await pull(b, name, { retry: { attempts: 4, baseDelayMs: 10 } })).image.id, srcId);
    assert.equal(proxy.log.filter((l) => / -> 503 \(fault\)/.test(l)).length, 2);
    proxy.rules.splice(0, proxy.rules.length, { method: 'GET', path: /manifests\/v1$/, fault: { status: 429, headers: { 'Retry-After': '0' } }, times: 1 });
    assert.equal((await pull(b, name, { retry: { attempts: 4, baseDelayMs: 10 } })).downloaded, false);

    // A registry that keeps failing: REGISTRY_UNAVAILABLE naming the attempts.
    proxy.rules.splice(0, proxy.rules.length, { path: /manifests/, fault: { status: 500 } });
    b = await freshStore();
    before = storeState(b);
    await assert.rejects(pull(b, name, FAST), isRegistryError('REGISTRY_UNAVAILABLE', /500 .*after 3 attempts/));
    assert.deepEqual(storeState(b), before);

    // A tag that does not exist.
    proxy.rules.length = 0;
    await assert.rejects(pull(b, `${proxy.host}/${REPO}:nope`, FAST), isRegistryError('REGISTRY_NOT_FOUND', new RegExp(`manifest for ${proxy.host}/tsb/app:nope not found: manifest unknown`)));
    await assert.rejects(pull(b, `${proxy.host}/tsb/missing:v1`, FAST), isRegistryError('REGISTRY_NOT_FOUND'));
    assert.deepEqual(storeState(b), before);

    // A body that is not what the registry says it is.
    proxy.rules.splice(0, proxy.rules.length, { method: 'GET', path: /manifests\/v1$/, fault: { corrupt: true } });
    await assert.rejects(pull(b, name, FAST), (e: unknown) => e instanceof RegistryError && (e.code === 'REGISTRY_DIGEST' || e.code === 'REGISTRY_MANIFEST'));
    assert.deepEqual(storeState(b), before);

    // A 403 on the manifest PUT: the push fails and records no digest reference.
    proxy.rules.splice(0, proxy.rules.length, { method: 'PUT', path: /manifests\//, fault: { status: 403, body: JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }) } });
    const denied = `${proxy.host}/tsb/denied:v1`;
    await src.tag(denied, srcId);
    const reposBefore = readFileSync(src.layout.repositoriesJson, 'utf8');
    await assert.rejects(pushImage(src, denied, FAST), isRegistryError('REGISTRY_DENIED', /denied: requested access to the resource is denied/));
    assert.equal(readFileSync(src.layout.repositoriesJson, 'utf8'), reposBefore);
  } finally {
    await proxy.stop();
  }
  // Nothing answers: a network error, quickly.
  const dead = await freshStore();
  await assert.rejects(pull(dead, `127.0.0.1:1/${REPO}:v1`, FAST), isRegistryError('REGISTRY_NETWORK', /cannot reach 127\.0\.0\.1:1/));
});
