/**
 * Test harness for registries on 127.0.0.1:
 * - `startRegistry`: Debian's `docker-registry` (distribution 2.8) with its own
 *   config, storage and log under one temp dir; no auth, htpasswd Basic auth, or
 *   token auth against `startTokenServer`. Stopped by pid; the dir is removed.
 * - `startTokenServer`: a Docker token server written for the tests: checks Basic
 *   credentials, grants the scopes a policy allows, signs RS256 JWTs with an
 *   openssl-made key whose self-signed certificate the registry trusts.
 * - `startFaultProxy`: an HTTP proxy in front of a registry that fails, truncates
 *   or corrupts chosen requests (for retries, 4xx/5xx and bad blobs).
 * - `makeTestImage`: a 3-layer image (busybox rootfs, a file, a whiteout) in a store.
 * Every server and process is stopped by the returned `stop()`, and also on exit.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createSign, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { emptyContainerConfig } from '../../src/image/config.js';
import { rfc3339Nano, serializeImageConfig, type ImageConfig } from '../../src/image/image.js';
import type { ImageId, ChainId } from '../../src/image/digest.js';
import { applyLayer } from '../../src/layer/reader.js';
import { importRootfs } from '../../src/store/import.js';
import type { ImageStore } from '../../src/store/store.js';
import { busyboxRootfsTar } from './dockerd.js';
import { tarOf, type MemEntry } from '../layer/tar-build.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

/** Why registry tests cannot run here, or undefined. */
export function registryUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'registry tests need Linux';
  if (!existsSync(REGISTRY_BIN)) return `${REGISTRY_BIN} not found; apt-get install docker-registry`;
  return undefined;
}

export function skopeoAvailable(): boolean {
  return existsSync('/usr/bin/skopeo');
}

const live = new Set<ChildProcess>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// docker-registry

export type RegistryAuth = { htpasswd: Record<string, string> } | { token: TokenServer };

export interface Registry {
  /** `127.0.0.1:PORT`. */
  host: string;
  url: string;
  dir: string;
  storage: string;
  logFile: string;
  pid: number;
  /** The file holding a blob's bytes in the registry's storage. */
  blobFile(digest: string): string;
  stop(): Promise<void>;
}

export async function startRegistry(opts: { auth?: RegistryAuth } = {}): Promise<Registry> {
  const reason = registryUnavailableReason();
  if (reason) throw new Error(reason);
  hookExit();
  const dir = mkdtempSync(join(tmpdir(), 'tsreg-'));
  const storage = join(dir, 'storage');
  const logFile = join(dir, 'registry.log');
  const port = await freePort();
  let auth = '';
  if (opts.auth && 'htpasswd' in opts.auth) {
    const lines = Object.entries(opts.auth.htpasswd).map(([u, p]) => execFileSync('htpasswd', ['-Bbn', u, p], { encoding: 'utf8' }).trim());
    writeFileSync(join(dir, 'htpasswd'), lines.join('\n') + '\n');
    auth = `auth:\n  htpasswd:\n    realm: tsbuild-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (opts.auth && 'token' in opts.auth) {
    const t = opts.auth.token;
    auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.certFile}\n`;
  }
  const config = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    auth,
  ].join('\n');
  writeFileSync(join(dir, 'config.yml'), config);
  const fd = openSync(logFile, 'a');
  const child = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  live.add(child);
  let exited = false;
  const exit = new Promise<void>((r) => child.on('exit', () => ((exited = true), r())));
  const url = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (!exited) {
        child.kill('SIGTERM');
        await Promise.race([exit, sleep(5000)]);
        if (!exited) child.kill('SIGKILL');
        await Promise.race([exit, sleep(5000)]);
      }
      live.delete(child);
      rmSync(dir, { recursive: true, force: true });
    })());
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) {
      const log = readFileSync(logFile, 'utf8');
      await stop();
      throw new Error(`docker-registry exited during start-up:\n${log}`);
    }
    try {
      const res = await fetch(`${url}/v2/`);
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) {
      const log = readFileSync(logFile, 'utf8');
      await stop();
      throw new Error(`docker-registry did not answer:\n${log}`);
    }
    await sleep(50);
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    dir,
    storage,
    logFile,
    pid: child.pid!,
    blobFile: (digest) => {
      const hex = digest.replace(/^sha256:/, '');
      return join(storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    },
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// Token server

export interface TokenUser {
  password: string;
  /** The actions granted on a repository (default: all asked). */
  grant?: (repo: string, actions: string[]) => string[];
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Every token request: the account and scopes asked, and whether it was granted. */
  log: { account: string | undefined; scopes: string[]; ok: boolean }[];
  stop(): Promise<void>;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

export async function startTokenServer(opts: { users: Record<string, TokenUser>; anonymous?: (repo: string, actions: string[]) => string[] }): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tstok-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=tsbuild-test-token'], { stdio: 'ignore' });
  const key = readFileSync(keyFile);
  const certDer = new X509Certificate(readFileSync(certFile)).raw;
  const service = 'tsbuild-test-registry';
  const issuer = 'tsbuild-test-issuer';
  const log: TokenServer['log'] = [];

  const sign = (claims: object): string => {
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] }));
    const payload = b64url(JSON.stringify(claims));
    const s = createSign('RSA-SHA256');
    s.update(`${header}.${payload}`);
    return `${header}.${payload}.${b64url(s.sign(key))}`;
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const authz = req.headers.authorization ?? '';
    let account: string | undefined;
    let user: TokenUser | undefined;
    if (authz.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(authz.slice(6), 'base64').toString('utf8').split(':');
      const p = rest.join(':');
      const known = opts.users[u ?? ''];
      if (!known || known.password !== p) {
        log.push({ account: u, scopes: url.searchParams.getAll('scope'), ok: false });
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ details: 'incorrect username or password' }));
        return;
      }
      account = u;
      user = known;
    }
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s);
    const access: { type: string; name: string; actions: string[] }[] = [];
    for (const s of scopes) {
      const first = s.indexOf(':');
      const last = s.lastIndexOf(':');
      if (first < 0 || last <= first) continue;
      const type = s.slice(0, first);
      const name = s.slice(first + 1, last);
      const actions = s.slice(last + 1).split(',');
      const grant = user ? (user.grant ?? ((_r: string, a: string[]) => a)) : (opts.anonymous ?? (() => []));
      access.push({ type, name, actions: grant(name, actions) });
    }
    log.push({ account, scopes, ok: true });
    const now = Math.floor(Date.now() / 1000);
    const token = sign({ iss: issuer, sub: account ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  const port = await listen(server);
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    log,
    stop: async () => {
      await closeServer(server);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Fault proxy

export type Fault =
  | { status: number; headers?: Record<string, string>; body?: string }
  /** Forward, but cut the response body after this many bytes (Content-Length kept). */
  | { truncateAfter: number }
  /** Forward, flipping one byte of the body. */
  | { corrupt: true };

export interface FaultRule {
  method?: string;
  /** Matched against the request path and query. */
  path: RegExp;
  fault: Fault;
  /** How many matching requests to fault (default: all). */
  times?: number;
}

export interface FaultProxy {
  host: string;
  rules: FaultRule[];
  /** `METHOD path -> status` of every request. */
  log: string[];
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string, rules: FaultRule[] = []): Promise<FaultProxy> {
  const t = new URL(target);
  const log: string[] = [];
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    const rule = rules.find((r) => (r.method === undefined || r.method === req.method) && r.path.test(path) && (r.times === undefined || r.times > 0));
    if (rule && rule.times !== undefined) rule.times--;
    const fault = rule?.fault;
    if (fault && 'status' in fault) {
      log.push(`${req.method} ${path} -> ${fault.status} (fault)`);
      req.resume();
      res.writeHead(fault.status, { 'Content-Type': 'application/json', ...(fault.headers ?? {}) });
      res.end(fault.body ?? JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected ${fault.status}` }] }));
      return;
    }
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path, headers: req.headers }, (ures) => {
      log.push(`${req.method} ${path} -> ${ures.statusCode}${fault ? ' (fault)' : ''}`);
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      if (fault && 'truncateAfter' in fault) {
        // Headers and the first bytes go out (flushed), then the connection is cut.
        res.flushHeaders();
        let sent = 0;
        const cut = () => setTimeout(() => res.socket?.destroy(), 20);
        ures.on('data', (b: Buffer) => {
          if (sent >= fault.truncateAfter) return;
          const part = b.subarray(0, fault.truncateAfter - sent);
          sent += part.length;
          if (sent >= fault.truncateAfter) res.write(part, cut);
          else res.write(part);
        });
        ures.on('end', () => {
          if (sent < fault.truncateAfter) cut();
        });
        return;
      }
      if (fault && 'corrupt' in fault) {
        let first = true;
        ures.on('data', (b: Buffer) => {
          if (first && b.length > 0) {
            const c = Buffer.from(b);
            c[c.length >> 1] = c[c.length >> 1]! ^ 0xff;
            res.write(c);
            first = false;
          } else res.write(b);
        });
        ures.on('end', () => res.end());
        return;
      }
      ures.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  const port = await listen(server);
  return { host: `127.0.0.1:${port}`, rules, log, stop: () => closeServer(server) };
}

// ---------------------------------------------------------------------------------------------
// Test images

/** A layer from in-memory entries, on `parent`. */
export async function putTestLayer(store: ImageStore, parent: ChainId | null, entries: MemEntry[]) {
  return store.putLayer(parent, async (diffDir) => {
    const r = await applyLayer(Readable.from([tarOf(entries)]), diffDir);
    return { diffId: r.diffId, tarSplit: r.tarSplit, size: r.size };
  });
}

/**
 * A 3-layer image tagged `tag`: the busybox rootfs, `/hello.txt` (+ `/data/a`), and a
 * layer deleting `/data/a` with a whiteout and adding `/data/b`. `CMD cat /hello.txt`.
 */
export async function makeTestImage(store: ImageStore, tag: string, text = 'hello from tsbuild\n'): Promise<ImageId> {
  const baseId = await importRootfs(store, Readable.from([busyboxRootfsTar()]), { platform: { os: 'linux', architecture: 'amd64' }, now: new Date('2024-01-01T00:00:00Z') });
  const base = await store.images.require(baseId);
  const l1 = base.config.rootfs.diff_ids[0]!;
  const layer2 = await putTestLayer(store, l1 as unknown as ChainId, [
    { h: { name: 'hello.txt', mode: 0o100644 }, data: text },
    { h: { name: 'data/', typeflag: '5' } },
    { h: { name: 'data/a', mode: 0o100600 }, data: 'a'.repeat(5000) },
  ]);
  const layer3 = await putTestLayer(store, layer2.chainId, [
    { h: { name: 'data/', typeflag: '5' } },
    { h: { name: 'data/.wh.a', mode: 0o600 } },
    { h: { name: 'data/b', mode: 0o100644 }, data: createHash('sha256').update(text).digest('hex') },
  ]);
  const created = rfc3339Nano(new Date('2024-01-02T00:00:00Z'));
  const cfg = emptyContainerConfig();
  cfg.Cmd = ['cat', '/hello.txt'];
  cfg.Env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
  const config: ImageConfig = {
    architecture: 'amd64',
    config: cfg,
    container_config: emptyContainerConfig(),
    created,
    docker_version: '20.10.24',
    history: [
      { created: base.config.created, comment: 'Imported from -' },
      { created, created_by: '/bin/sh -c #(nop) ADD hello' },
      { created, created_by: '/bin/sh -c rm /data/a' },
      { created, created_by: '/bin/sh -c #(nop)  CMD ["cat" "/hello.txt"]', empty_layer: true },
    ],
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [l1, layer2.diffId, layer3.diffId] },
  };
  const id = await store.putImage(serializeImageConfig(config));
  await store.tag(tag, id);
  return id;
}

/** `docker-registry`'s log, for assertion messages. */
export function registryLog(r: Registry): string {
  try {
    return readFileSync(r.logFile, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '';
  }
}

/** Runs the tsbuild CLI (from source, through tsx) in a child process. */
export function runCli(args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
  const script = `const m = await import(${JSON.stringify(main)}); process.exitCode = await m.main(['node', 'tsbuild', ...process.argv.slice(1)]);`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ...args], { env: { ...process.env, ...(opts.env ?? {}) }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.end(opts.input ?? '');
  });
}
