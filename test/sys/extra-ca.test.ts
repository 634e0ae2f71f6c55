/**
 * TSBUILD_EXTRA_CA_CERTS (sys/extra-ca.ts): fetch() trusts the extra roots after
 * installExtraCaCerts(), as node would with NODE_EXTRA_CA_CERTS. A local HTTPS server with a
 * self-signed certificate (openssl CLI); each case runs in a child node so the global fetch
 * dispatcher and environment are its own.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const MODULE = new URL('../../src/sys/extra-ca.ts', import.meta.url).pathname;
const opensslSkip = spawnSync('openssl', ['version']).status === 0 ? undefined : 'needs openssl (Debian package openssl)';

/** A child node that fetches `url` (after installExtraCaCerts() when `install`); its output. */
function fetchInChild(url: string, env: NodeJS.ProcessEnv, install: boolean): Promise<string> {
  const script = `import { installExtraCaCerts } from '${MODULE}';
${install ? 'await installExtraCaCerts();' : ''}
try { const r = await fetch('${url}'); console.log('status', r.status, await r.text()); } catch (err) { console.log('error', err.cause?.code ?? err.message); }`;
  const { NODE_EXTRA_CA_CERTS: _dropped, TSBUILD_EXTRA_CA_CERTS: _too, ...base } = process.env;
  // Async: the server answers from this process's event loop.
  const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...base, ...env } });
  let out = '';
  c.stdout.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => c.on('close', () => resolve(out)));
}

test('extra CA: fetch trusts TSBUILD_EXTRA_CA_CERTS once installed, and not before', { skip: opensslSkip, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-ca-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'pipe' });
  const server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.end('trusted'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const env = { TSBUILD_EXTRA_CA_CERTS: join(dir, 'cert.pem') };

  assert.match(await fetchInChild(url, env, true), /^status 200 trusted$/m);
  assert.match(await fetchInChild(url, env, false), /^error (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/m);
  assert.match(await fetchInChild(url, {}, true), /^error /m);
  // An unreadable file: node's warning, and the bundled roots only.
  const missing = await fetchInChild(url, { TSBUILD_EXTRA_CA_CERTS: join(dir, 'missing.pem') }, true);
  assert.match(missing, /Ignoring extra certs from .*missing\.pem/);
  assert.match(missing, /^error /m);
});
