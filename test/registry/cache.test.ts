/**
 * The registry build cache (`--cache-to` / `--cache-from`) against Debian's
 * docker-registry on 127.0.0.1: a build on root A exports its cache; a build on
 * an empty root B (only the same busybox base) runs no RUN and ends on A's image
 * ID; mode=min holds only the target's chain; a corrupted cache blob is rejected
 * (warning, the step runs here, nothing of it stored); through the CLI, a missing
 * ref is a warning and --output writes; a failed cache push fails the build.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { silentEvents, type BuildEvents } from '../../src/exec/build.js';
import { runBuild, type RunBuildOptions } from '../../src/exec/run-build.js';
import { parseCacheConfig, CACHE_CONFIG_MEDIA_TYPE } from '../../src/registry/cache.js';
import type { ImageConfig } from '../../src/image/image.js';
import type { ImageId } from '../../src/image/digest.js';
import { ImageStore } from '../../src/store/store.js';
import { importRootfs } from '../../src/store/import.js';
import { busyboxRootfsTar } from '../support/dockerd.js';
import { registryUnavailableReason, runCli, startRegistry, type Registry } from '../support/registry.js';
import { RegistryError } from '../../src/registry/errors.js';

const skip = process.getuid?.() !== 0 ? 'needs root (RUN steps)' : !existsSync('/bin/busybox') ? 'needs busybox-static' : registryUnavailableReason();

// Two stages, so mode=min (the target's chain) and mode=max (every stage) differ.
// `hostname` makes the tools layer different on every run: a hit can only come from the cache.
const DOCKERFILE = [
  'FROM busybox:latest AS tools',
  'RUN hostname > /tool',
  'FROM busybox:latest',
  'ENV X=1',
  'RUN echo built-on-$(hostname) > /out',
  'COPY app.txt /srv/',
  'COPY --from=tools /tool /srv/tool',
  'CMD ["cat", "/out"]',
  '',
].join('\n');

let reg: Registry;
let work: string;
let ctx: string;
let roots = 0;
let built: ImageId;

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  work = mkdtempSync(join(tmpdir(), 'tsb-cache-'));
  ctx = join(work, 'ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE);
  writeFileSync(join(ctx, 'app.txt'), 'app\n');
});

after(async () => {
  if (skip) return;
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A fresh root holding only the busybox base (same bytes and time: the same image ID everywhere). */
async function freshRoot(): Promise<ImageStore> {
  const store = await ImageStore.open(join(work, `root-${++roots}`));
  await importRootfs(store, Readable.from([busyboxRootfsTar()]), { reference: 'busybox:latest', now: new Date(1_700_000_000_000), platform: { os: 'linux', architecture: 'amd64' } });
  return store;
}

interface Seen {
  running: number;
  cached: number;
  warnings: string[];
}

async function buildOn(store: ImageStore, opts: Partial<RunBuildOptions>): Promise<{ id: ImageId; seen: Seen }> {
  const seen: Seen = { running: 0, cached: 0, warnings: [] };
  const events: BuildEvents = { ...silentEvents, running: () => void seen.running++, cached: () => void seen.cached++, warning: (m) => void seen.warnings.push(m) };
  const { id } = await runBuild({ root: store.root, contextDir: ctx, tags: ['app:latest'], events, ...opts });
  return { id, seen };
}

async function cacheConfigOf(ref: string): Promise<ReturnType<typeof parseCacheConfig>> {
  const res = await fetch(`${reg.url}/v2/${ref}/manifests/latest`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(res.status, 200);
  const manifest = (await res.json()) as { config: { mediaType: string; digest: string }; layers: { digest: string }[] };
  assert.equal(manifest.config.mediaType, CACHE_CONFIG_MEDIA_TYPE);
  const blob = await fetch(`${reg.url}/v2/${ref}/blobs/${manifest.config.digest}`);
  return parseCacheConfig(Buffer.from(await blob.arrayBuffer()));
}

const cmdOf = (config: Buffer) => ((JSON.parse(config.toString('utf8')) as ImageConfig).container_config.Cmd ?? []).join(' ');

test('cache-to on root A, cache-from on an empty root B: no RUN executes on B and the image ID is A\'s', { skip, timeout: 120_000 }, async () => {
  const a = await freshRoot();
  const first = await buildOn(a, { cacheTo: [{ type: 'registry', ref: `${reg.host}/cache/app:latest`, mode: 'max', ignoreError: false }] });
  assert.ok(first.seen.running >= 2, 'A ran its steps');
  built = first.id;

  const b = await freshRoot();
  const second = await buildOn(b, { cacheFrom: [{ type: 'registry', ref: `${reg.host}/cache/app:latest` }] });
  assert.deepEqual(second.seen, { running: 0, cached: 6, warnings: [] });
  assert.equal(second.id, first.id);
  // B holds the whole image: every layer, byte-identical diffIDs, the tag.
  const image = await b.require('app:latest');
  assert.equal(image.id, first.id);
  assert.deepEqual((await b.layerChain(image)).map((l) => l.diffId), (await a.layerChain(await a.require('app:latest'))).map((l) => l.diffId));
  assert.deepEqual(readdirSync(join(b.root, 'tsbuild-tmp')).filter((d) => !d.startsWith('proc-')), []);
});

test('mode=min exports only the target stage\'s chain; mode=max every stage', { skip, timeout: 120_000 }, async () => {
  const a = await freshRoot();
  await buildOn(a, { cacheFrom: [{ type: 'registry', ref: `${reg.host}/cache/app:latest` }], cacheTo: [{ type: 'registry', ref: `${reg.host}/cache/min:latest`, mode: 'min', ignoreError: false }] });
  const min = await cacheConfigOf('cache/min');
  const max = await cacheConfigOf('cache/app');
  const cmds = (c: typeof min) => c.records.map((r) => cmdOf(r.config));
  assert.equal(min.records.length, 5, cmds(min).join('\n'));
  assert.ok(!cmds(min).some((c) => c.includes('hostname > /tool')));
  assert.equal(max.records.length, 6);
  assert.ok(cmds(max).some((c) => c.includes('hostname > /tool')));
  assert.equal(min.records.at(-1)!.id, built, 'the final image is the last record');
});

test('CLI: cache-from a ref that does not exist is a warning, the build runs, --output still writes; a failed cache push is an error unless ignore-error', { skip, timeout: 120_000 }, async () => {
  const c = await freshRoot();
  const layout = join(work, 'layout');
  const r = await runCli(['build', '--root', c.root, '--progress', 'plain', '-t', 'app:latest', '--cache-from', `${reg.host}/cache/nothing:latest`, '--output', `type=oci,dest=${layout},tar=false`, ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /\[WARNING\]: cache from .*cache\/nothing:latest not used: .*not found/);
  assert.match(r.stdout, /Running in/);
  const id = (await c.require('app:latest')).id;
  assert.equal(JSON.parse(readFileSync(join(layout, 'manifest.json'), 'utf8'))[0].Config, `blobs/sha256/${id.slice(7)}`);

  // Everything is cached on C now: only the export runs, and fails.
  const dead = { type: 'registry' as const, ref: '127.0.0.1:1/cache/x:latest', mode: 'min' as const };
  await assert.rejects(buildOn(c, { cacheTo: [{ ...dead, ignoreError: false }] }), (e) => e instanceof RegistryError && e.code === 'REGISTRY_NETWORK');
  const ignored = await buildOn(c, { cacheTo: [{ ...dead, ignoreError: true }] });
  assert.equal(ignored.seen.warnings.length, 1);
  assert.match(ignored.seen.warnings[0]!, /cache export to 127\.0\.0\.1:1\/cache\/x:latest failed/);
});

test('a corrupted cache blob is rejected: a warning, the step runs here, nothing of the blob is stored', { skip, timeout: 120_000 }, async () => {
  const max = await cacheConfigOf('cache/app');
  const record = max.records.find((r) => cmdOf(r.config).includes('hostname > /tool'))!;
  const manifest = (await (await fetch(`${reg.url}/v2/cache/app/manifests/latest`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { layers: { digest: string }[] };
  const blob = manifest.layers[max.layers.indexOf(record.diffId!)]!.digest;
  const file = reg.blobFile(blob);
  const bytes = readFileSync(file);
  const mid = bytes.length >> 1;
  bytes[mid] = bytes[mid]! ^ 0xff;
  writeFileSync(file, bytes);

  const d = await freshRoot();
  const r = await buildOn(d, { cacheFrom: [{ type: 'registry', ref: `${reg.host}/cache/app:latest` }] });
  assert.ok(r.seen.warnings.some((w) => /build cache entry not used: .*verification failed/.test(w)), r.seen.warnings.join('\n'));
  assert.ok(r.seen.running >= 1, 'the tools RUN ran here');
  const diffIds = new Set<string>();
  for (const l of readdirSync(d.layout.layersDir)) diffIds.add(readFileSync(join(d.layout.layersDir, l, 'diff'), 'utf8'));
  assert.ok(!diffIds.has(record.diffId!), 'the corrupted layer is not in the store');
  assert.ok(!(await d.images.get(record.id)), 'nor its image');
  assert.deepEqual(readdirSync(join(d.root, 'tsbuild-tmp')).filter((x) => !x.startsWith('proc-')), []);
});
