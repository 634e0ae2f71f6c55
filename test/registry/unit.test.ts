// The registry client's pure parts: challenges, platforms, manifests, credentials, progress text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eraseCredentials, lookupCredentials, metadataHmacKey, parseChallenges, storeCredentials } from '../../src/registry/auth.js';
import { httpAllowed, registryHost } from '../../src/registry/client.js';
import { MEDIA, parseManifest, platformRank, selectPlatform, serializeImageManifest, type ManifestIndex } from '../../src/registry/media.js';
import { metadataHmac } from '../../src/registry/metadata.js';
import { humanSize, plainProgress, progressText } from '../../src/registry/progress.js';
import { loginDomain } from '../../src/registry/login.js';
import { RegistryError } from '../../src/registry/errors.js';

test('WWW-Authenticate challenges: quoted params with commas, several challenges', () => {
  const c = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push",error="insufficient_scope"');
  assert.deepEqual(c, [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull,push', error: 'insufficient_scope' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="tsbuild-test"'), [{ scheme: 'basic', params: { realm: 'tsbuild-test' } }]);
  assert.deepEqual(
    parseChallenges('Basic realm="a\\"b", Bearer realm=http://x/token,service=s').map((x) => [x.scheme, x.params]),
    [
      ['basic', { realm: 'a"b' }],
      ['bearer', { realm: 'http://x/token', service: 's' }],
    ],
  );
  assert.deepEqual(parseChallenges(null), []);
});

test('endpoints: docker.io is registry-1.docker.io; HTTP only for loopback or --insecure-registry', () => {
  assert.equal(registryHost('docker.io'), 'registry-1.docker.io');
  assert.equal(registryHost('127.0.0.1:5000'), '127.0.0.1:5000');
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.3.4.5', '[::1]:5000']) assert.equal(httpAllowed(h), true, h);
  for (const h of ['docker.io', 'registry.example.com:5000', '10.0.0.1:5000', '128.0.0.1']) assert.equal(httpAllowed(h), false, h);
  assert.equal(httpAllowed('registry.example.com:5000', ['registry.example.com:5000']), true);
  assert.equal(httpAllowed('registry.example.com:5000', ['http://registry.example.com']), true);
  assert.equal(httpAllowed('registry.example.com:5000', ['other.example.com']), false);
  assert.equal(loginDomain(undefined), 'docker.io');
  assert.equal(loginDomain('https://index.docker.io/v1/'), 'docker.io');
  assert.equal(loginDomain('http://127.0.0.1:5000/'), '127.0.0.1:5000');
});

const desc = (platform: { os: string; architecture: string; variant?: string }, n: number) => ({
  mediaType: MEDIA.dockerManifest,
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}` as `sha256:${string}`,
  size: 100,
  platform,
});

test('platform selection: exact first, ARM and amd64 variant fallbacks, a clear error when none fits', () => {
  const index: ManifestIndex = {
    kind: 'index',
    mediaType: MEDIA.dockerList,
    manifests: [desc({ os: 'linux', architecture: 'amd64' }, 1), desc({ os: 'linux', architecture: 'arm', variant: 'v6' }, 2), desc({ os: 'linux', architecture: 'arm', variant: 'v7' }, 3), desc({ os: 'linux', architecture: 'arm64', variant: 'v8' }, 4), desc({ os: 'windows', architecture: 'amd64' }, 5)],
  };
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'amd64' }).digest, index.manifests[0]!.digest);
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }).digest, index.manifests[2]!.digest);
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v8' }).digest, index.manifests[2]!.digest);
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm64' }).digest, index.manifests[3]!.digest, 'arm64/v8 is arm64');
  assert.equal(selectPlatform(index, { os: 'windows', architecture: 'amd64' }).digest, index.manifests[4]!.digest);
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'amd64', variant: 'v3' }).digest, index.manifests[0]!.digest, 'amd64/v3 runs v1');
  assert.throws(() => selectPlatform(index, { os: 'linux', architecture: 's390x' }), (e: unknown) => e instanceof RegistryError && e.code === 'REGISTRY_PLATFORM' && /no matching manifest for linux\/s390x in the manifest list entries/.test(e.message));
  assert.equal(platformRank({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' }), -1, 'v6 cannot run v7');
  assert.equal(platformRank({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64', variant: 'v2' }), -1, 'plain amd64 cannot run v2');
});

test('manifests: media types from the header, the body or the shape; schema 1 refused; Docker\'s indented form', () => {
  const m = serializeImageManifest(MEDIA.dockerManifest, { mediaType: MEDIA.dockerConfig, digest: `sha256:${'a'.repeat(64)}`, size: 2 }, [{ mediaType: MEDIA.dockerLayerGzip, digest: `sha256:${'b'.repeat(64)}`, size: 3 }]);
  assert.equal(
    m.toString(),
    `{\n   "schemaVersion": 2,\n   "mediaType": "${MEDIA.dockerManifest}",\n   "config": {\n      "mediaType": "${MEDIA.dockerConfig}",\n      "size": 2,\n      "digest": "sha256:${'a'.repeat(64)}"\n   },\n   "layers": [\n      {\n         "mediaType": "${MEDIA.dockerLayerGzip}",\n         "size": 3,\n         "digest": "sha256:${'b'.repeat(64)}"\n      }\n   ]\n}`,
  );
  const parsed = parseManifest(m, `${MEDIA.dockerManifest}; charset=utf-8`);
  assert.equal(parsed.kind, 'manifest');
  const oci = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: MEDIA.ociConfig, digest: `sha256:${'c'.repeat(64)}`, size: 1 }, layers: [] })), 'application/octet-stream');
  assert.equal(oci.mediaType, MEDIA.ociManifest);
  const idx = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })), null);
  assert.equal(idx.kind, 'index');
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', fsLayers: [] })), MEDIA.dockerSchema1Signed), /schema 1 manifest/);
  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":2,"mediaType":"' + MEDIA.dockerManifest + '","config":{"digest":"md5:x","size":1},"layers":[]}'), null), /no sha256 digest/);
  assert.throws(() => parseManifest(Buffer.from('not json'), null), (e: unknown) => e instanceof RegistryError && e.code === 'REGISTRY_MANIFEST');
});

test('credentials: config.json auths (by key or host), credHelpers/credsStore through docker-credential-*, store and erase', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsb-creds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'cfg');
  mkdirSync(cfg);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  writeFileSync(
    join(cfg, 'config.json'),
    JSON.stringify({
      auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') }, 'http://reg.example.com:5000/v2/': { auth: b64('u:p:with:colons') }, 'tok.example.com': { identitytoken: 'refresh-me' } },
      credHelpers: { 'helped.example.com': 'fake' },
    }),
  );
  assert.deepEqual(await lookupCredentials('docker.io', cfg), { username: 'hubuser', password: 'hubpass' });
  assert.deepEqual(await lookupCredentials('reg.example.com:5000', cfg), { username: 'u', password: 'p:with:colons' });
  assert.deepEqual(await lookupCredentials('tok.example.com', cfg), { identityToken: 'refresh-me' });
  assert.equal(await lookupCredentials('nowhere.example.com', cfg), undefined);

  // A credential helper on PATH: get/store/erase with JSON on stdin, as docker-credential-* do.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const db = join(dir, 'helper-db.json');
  writeFileSync(db, JSON.stringify({ 'helped.example.com': { Username: 'helper-user', Secret: 'helper-secret' } }));
  writeFileSync(
    join(bin, 'docker-credential-fake'),
    `#!/usr/bin/env node
const fs = require('fs');
const db = JSON.parse(fs.readFileSync(${JSON.stringify(db)}, 'utf8'));
const input = fs.readFileSync(0, 'utf8').trim();
const action = process.argv[2];
if (action === 'get') {
  const e = db[input];
  if (!e) { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); }
  process.stdout.write(JSON.stringify({ ServerURL: input, ...e }));
} else if (action === 'store') {
  const c = JSON.parse(input); db[c.ServerURL] = { Username: c.Username, Secret: c.Secret };
  fs.writeFileSync(${JSON.stringify(db)}, JSON.stringify(db));
} else if (action === 'erase') { delete db[input]; fs.writeFileSync(${JSON.stringify(db)}, JSON.stringify(db)); }
`,
  );
  chmodSync(join(bin, 'docker-credential-fake'), 0o755);
  const oldPath = process.env['PATH'];
  process.env['PATH'] = `${bin}:${oldPath}`;
  t.after(() => void (process.env['PATH'] = oldPath));
  assert.deepEqual(await lookupCredentials('helped.example.com', cfg), { username: 'helper-user', password: 'helper-secret' });

  // credsStore for everything else: store goes to the helper, config.json keeps an empty entry.
  const cfg2 = join(dir, 'cfg2');
  mkdirSync(cfg2);
  writeFileSync(join(cfg2, 'config.json'), JSON.stringify({ credsStore: 'fake', other: { kept: true } }));
  await storeCredentials('new.example.com', { username: 'n', password: 'pw' }, cfg2);
  assert.deepEqual(JSON.parse(readFileSync(db, 'utf8'))['new.example.com'], { Username: 'n', Secret: 'pw' });
  const doc = JSON.parse(readFileSync(join(cfg2, 'config.json'), 'utf8'));
  assert.deepEqual(doc.auths, { 'new.example.com': {} });
  assert.deepEqual(doc.other, { kept: true });
  assert.deepEqual(await lookupCredentials('new.example.com', cfg2), { username: 'n', password: 'pw' });
  assert.equal(await eraseCredentials('new.example.com', cfg2), true);
  assert.equal(JSON.parse(readFileSync(db, 'utf8'))['new.example.com'], undefined);
  assert.equal(await lookupCredentials('new.example.com', cfg2), undefined);

  // Without a helper: base64 "user:pass" under `auths`, mode 0600.
  const cfg3 = join(dir, 'cfg3');
  await storeCredentials('docker.io', { username: 'me', password: 'pw' }, cfg3);
  assert.deepEqual(JSON.parse(readFileSync(join(cfg3, 'config.json'), 'utf8')), { auths: { 'https://index.docker.io/v1/': { auth: b64('me:pw') } } });
  assert.equal((await import('node:fs')).statSync(join(cfg3, 'config.json')).mode & 0o777, 0o600);

  // A broken config.json is a clear error.
  writeFileSync(join(cfg3, 'config.json'), '{nope');
  await assert.rejects(lookupCredentials('docker.io', cfg3), (e: unknown) => e instanceof RegistryError && e.code === 'REGISTRY_CREDENTIALS' && /not valid JSON/.test(e.message));
});

test('v2 metadata HMAC as moby computes it', () => {
  // Anonymous: the key is the digest of "{}".
  assert.equal(metadataHmacKey(undefined).toString(), 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  const key = metadataHmacKey({ username: 'u', password: 'p' });
  assert.match(key.toString(), /^sha256:[0-9a-f]{64}$/);
  assert.match(metadataHmac(key, `sha256:${'1'.repeat(64)}`, 'docker.io/library/x'), /^[0-9a-f]{64}$/);
  assert.equal(metadataHmac(undefined, `sha256:${'1'.repeat(64)}`, 'x'), '');
});

test('progress text like docker: sizes, bars, status lines without bars when not a terminal', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(745_000), '745kB');
  assert.equal(humanSize(1_234_567), '1.23MB');
  assert.equal(humanSize(2_500_000), '2.5MB');
  assert.equal(progressText({ current: 50, total: 100 }), `[${'='.repeat(25)}>${' '.repeat(24)}]      50B/100B`);
  assert.equal(progressText({ current: 100, total: 100 }).startsWith(`[${'='.repeat(50)}]`), true);
  const out: string[] = [];
  const p = plainProgress((s) => out.push(s));
  p.message('latest: Pulling from x');
  p.layer('abc', 'Downloading', { current: 1, total: 10 });
  p.layer('abc', 'Downloading', { current: 5, total: 10 });
  p.layer('abc', 'Pull complete');
  p.close();
  p.layer('abc', 'ignored');
  assert.deepEqual(out, ['latest: Pulling from x\n', 'abc: Downloading\n', 'abc: Pull complete\n']);
});

test('terminal progress: one line per layer, rewritten in place with cursor moves', async () => {
  const { ttyProgress } = await import('../../src/registry/progress.js');
  let screen = '';
  const stream = { columns: 100, write: (s: string) => void (screen += s) } as unknown as NodeJS.WriteStream;
  const p = ttyProgress(stream, 0);
  p.message('v1: Pulling from app');
  p.layer('aaa', 'Pulling fs layer');
  p.layer('bbb', 'Pulling fs layer');
  screen = '';
  p.layer('aaa', 'Downloading', { current: 500, total: 1000 });
  // Two lines up (aaa is the second-to-last line), clear it, write, come back down.
  assert.equal(screen, `\x1b[2A\r\x1b[2Kaaa: Downloading [${'='.repeat(25)}>${' '.repeat(24)}]     500B/1kB\r\x1b[2B`);
  screen = '';
  p.layer('bbb', 'Pull complete');
  assert.equal(screen, '\x1b[1A\r\x1b[2Kbbb: Pull complete\r\x1b[1B');
  p.close();
});

test('the limiter runs at most n tasks at once, in order', async () => {
  const { Limiter } = await import('../../src/registry/limit.js');
  const l = new Limiter(3);
  let active = 0;
  let peak = 0;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      l.run(async () => {
        order.push(i);
        peak = Math.max(peak, ++active);
        await new Promise((r) => setTimeout(r, 5));
        active--;
      }),
    ),
  );
  assert.equal(peak, 3);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  await assert.rejects(l.run(async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await l.run(async () => 7), 7, 'a failed task frees its place');
});
