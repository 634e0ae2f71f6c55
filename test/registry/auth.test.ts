/**
 * Authentication against Debian's docker-registry on 127.0.0.1: htpasswd Basic auth,
 * and token auth with a Docker token server written for the tests (Bearer tokens
 * scoped per repository and action). Credentials come from explicit options, from
 * config.json (`tsbuild login`), or from a docker-credential-* helper. Wrong
 * credentials, missing credentials and missing push rights are clear errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore } from '../../src/store/store.js';
import { login, logout, pull, pushImage, RegistryError } from '../../src/registry/index.js';
import { makeTestImage, registryUnavailableReason, runCli, startRegistry, startTokenServer } from '../support/registry.js';

const skip = registryUnavailableReason() ?? (existsSync('/usr/bin/htpasswd') ? undefined : 'htpasswd not found; apt-get install apache2-utils');
const FAST = { retry: { attempts: 2, baseDelayMs: 10 } };

function rejectsWith(code: string, re?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof RegistryError, `expected a RegistryError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  };
}

test('htpasswd Basic auth: no or wrong credentials refused; login stores them; push, pull, logout', { skip, timeout: 180_000 }, async (t) => {
  const reg = await startRegistry({ auth: { htpasswd: { alice: 'wonderland' } } });
  const work = mkdtempSync(join(tmpdir(), 'tsb-basic-'));
  t.after(async () => {
    await reg.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const cfg = join(work, 'docker-config');
  const src = await ImageStore.open(join(work, 'src'));
  const name = `${reg.host}/basic/app:v1`;
  const id = await makeTestImage(src, name);

  await assert.rejects(pushImage(src, name, { ...FAST, dockerConfigDir: cfg }), rejectsWith('REGISTRY_AUTH', /no credentials for 127\.0\.0\.1:\d+; use tsbuild login/));
  await assert.rejects(pushImage(src, name, { ...FAST, credentials: { username: 'alice', password: 'nope' } }), rejectsWith('REGISTRY_AUTH', /unauthorized/));
  await assert.rejects(login(reg.host, { username: 'alice', password: 'nope' }, { dockerConfigDir: cfg }), rejectsWith('REGISTRY_AUTH', /incorrect username or password/));
  assert.equal(existsSync(join(cfg, 'config.json')), false, 'a failed login writes nothing');

  assert.equal(await login(`http://${reg.host}/`, { username: 'alice', password: 'wonderland' }, { dockerConfigDir: cfg }), reg.host);
  assert.deepEqual(JSON.parse(readFileSync(join(cfg, 'config.json'), 'utf8')), { auths: { [reg.host]: { auth: Buffer.from('alice:wonderland').toString('base64') } } });
  await pushImage(src, name, { dockerConfigDir: cfg });

  const b = await ImageStore.open(join(work, 'b'));
  assert.equal((await pull(b, name, { dockerConfigDir: cfg })).image.id, id);
  const c = await ImageStore.open(join(work, 'c'));
  await assert.rejects(pull(c, name, { ...FAST, dockerConfigDir: join(work, 'empty') }), rejectsWith('REGISTRY_AUTH', /pull access denied for 127\.0\.0\.1:\d+\/basic\/app/));
  assert.deepEqual((await c.list()).length, 0);

  assert.deepEqual(await logout(reg.host, { dockerConfigDir: cfg }), { key: reg.host, removed: true });
  await assert.rejects(pull(c, name, { ...FAST, dockerConfigDir: cfg }), rejectsWith('REGISTRY_AUTH'));

  // The CLI: login --password-stdin into $DOCKER_CONFIG, pull, logout.
  const env = { DOCKER_CONFIG: cfg, TSBUILD_ROOT: join(work, 'cli-root') };
  const bad = await runCli(['login', reg.host, '-u', 'alice', '--password-stdin'], { env, input: 'wrong\n' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^tsbuild: login to 127\.0\.0\.1:\d+ failed: unauthorized: incorrect username or password\n$/);
  const ok = await runCli(['login', reg.host, '-u', 'alice', '--password-stdin'], { env, input: 'wonderland\n' });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'Login Succeeded\n');
  const pulled = await runCli(['pull', name], { env });
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.match(pulled.stdout, /^v1: Pulling from basic\/app\n/);
  assert.match(pulled.stdout, /\nStatus: Downloaded newer image for 127\.0\.0\.1:\d+\/basic\/app:v1\n127\.0\.0\.1:\d+\/basic\/app:v1\n$/);
  const out = await runCli(['logout', reg.host], { env });
  assert.equal(out.stdout, `Removing login credentials for ${reg.host}\n`);
});

test('Bearer tokens from a token server: scopes per repository, anonymous pulls, push rights, credential helpers, mounts', { skip, timeout: 180_000 }, async (t) => {
  const tokens = await startTokenServer({
    users: {
      alice: { password: 'wonderland' },
      bob: { password: 'builder', grant: (_repo, actions) => actions.filter((a) => a === 'pull') },
    },
    anonymous: (repo, actions) => (repo.startsWith('public/') ? actions.filter((a) => a === 'pull') : []),
  });
  const reg = await startRegistry({ auth: { token: tokens } });
  const work = mkdtempSync(join(tmpdir(), 'tsb-token-'));
  t.after(async () => {
    await reg.stop();
    await tokens.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const empty = join(work, 'no-config');
  const src = await ImageStore.open(join(work, 'src'));
  const name = `${reg.host}/tok/app:v1`;
  const id = await makeTestImage(src, name);
  const alice = { username: 'alice', password: 'wonderland' };

  await assert.rejects(pushImage(src, name, { ...FAST, credentials: { username: 'alice', password: 'wrong' } }), rejectsWith('REGISTRY_AUTH', /unauthorized: incorrect username or password/));
  await assert.rejects(pushImage(src, name, { ...FAST, dockerConfigDir: empty }), rejectsWith('REGISTRY_DENIED', /denied: requested access to the resource is denied/));

  tokens.log.length = 0;
  await pushImage(src, name, { credentials: alice });
  assert.ok(tokens.log.every((l) => l.account === 'alice' && l.ok));
  assert.ok(tokens.log.some((l) => l.scopes.includes('repository:tok/app:pull,push')), JSON.stringify(tokens.log));

  // bob may pull, not push.
  const b = await ImageStore.open(join(work, 'b'));
  assert.equal((await pull(b, name, { credentials: { username: 'bob', password: 'builder' } })).image.id, id);
  const bobName = `${reg.host}/tok/bob:v1`;
  await b.tag(bobName, id);
  await assert.rejects(pushImage(b, bobName, { ...FAST, credentials: { username: 'bob', password: 'builder' } }), rejectsWith('REGISTRY_DENIED', /denied: requested access to the resource is denied/));

  // Anonymous: pull access denied on tok/, allowed on public/.
  const c = await ImageStore.open(join(work, 'c'));
  await assert.rejects(pull(c, name, { ...FAST, dockerConfigDir: empty }), rejectsWith('REGISTRY_DENIED', /pull access denied for 127\.0\.0\.1:\d+\/tok\/app, repository does not exist or may require 'tsbuild login'/));
  assert.equal((await c.list()).length, 0);
  const pub = `${reg.host}/public/app:v1`;
  await src.tag(pub, id);
  tokens.log.length = 0;
  const p = await pushImage(src, pub, { credentials: alice });
  assert.ok(tokens.log.some((l) => l.scopes.includes('repository:tok/app:pull')), `the mount asks for pull on its source: ${JSON.stringify(tokens.log)}`);
  assert.equal((await pull(c, pub, { dockerConfigDir: empty })).digest, p.digest);
  assert.ok(tokens.log.some((l) => l.account === undefined && l.scopes.includes('repository:public/app:pull')));

  // login against the token server: a token for the account, or a clear refusal.
  const loginCfg = join(work, 'login-config');
  await assert.rejects(login(reg.host, { username: 'alice', password: 'nope' }, { dockerConfigDir: loginCfg }), rejectsWith('REGISTRY_AUTH', /incorrect username or password/));
  await login(reg.host, alice, { dockerConfigDir: loginCfg });
  const d = await ImageStore.open(join(work, 'd'));
  assert.equal((await pull(d, name, { dockerConfigDir: loginCfg })).image.id, id);

  // Credentials through a credential helper named by credsStore.
  const bin = join(work, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'docker-credential-tsbtest'), `#!/bin/sh\nread server\nif [ "$1" = get ] && [ "$server" = "${reg.host}" ]; then printf '{"ServerURL":"%s","Username":"alice","Secret":"wonderland"}' "$server"; exit 0; fi\necho "credentials not found in native keychain"; exit 1\n`);
  chmodSync(join(bin, 'docker-credential-tsbtest'), 0o755);
  const helperCfg = join(work, 'helper-config');
  mkdirSync(helperCfg);
  writeFileSync(join(helperCfg, 'config.json'), JSON.stringify({ credsStore: 'tsbtest' }));
  const oldPath = process.env['PATH'];
  process.env['PATH'] = `${bin}:${oldPath}`;
  try {
    const viaHelper = `${reg.host}/tok/helper:v1`;
    await src.tag(viaHelper, id);
    tokens.log.length = 0;
    await pushImage(src, viaHelper, { dockerConfigDir: helperCfg });
    assert.ok(tokens.log.length > 0 && tokens.log.every((l) => l.account === 'alice'));
  } finally {
    process.env['PATH'] = oldPath;
  }
});
