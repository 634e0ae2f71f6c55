// COPY from heredocs and ADD from URLs (a loopback HTTP server the test starts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { runBuild } from '../../src/exec/run-build.js';
import { ImageStore } from '../../src/store/store.js';
import { importRootfs } from '../../src/store/import.js';
import { TsbuildError } from '../../src/errors.js';

const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync('/bin/busybox') ? 'needs busybox-static' : undefined;

async function setup(t: { after(fn: () => void): void }, dockerfile: string): Promise<{ root: string; ctx: string; store: ImageStore }> {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-src-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  const ctx = join(dir, 'ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), dockerfile);
  execFileSync('bash', [new URL('../../examples/busybox-rootfs.sh', import.meta.url).pathname, join(dir, 'bb.tar')]);
  const store = await ImageStore.open(root);
  await importRootfs(store, Readable.from([readFileSync(join(dir, 'bb.tar'))]), { reference: 'busybox:latest', platform: { os: 'linux', architecture: 'amd64' } });
  return { root, ctx, store };
}

async function topFile(store: ImageStore, ref: string, path: string): Promise<string> {
  const image = await store.require(ref);
  const layer = (await store.layerChain(image)).pop()!;
  return join(store.overlay.dirOf(layer.cacheId), 'diff', path);
}

test('COPY <<EOF writes the heredoc body; two heredocs land in a directory under their names', { skip }, async (t) => {
  const { root, ctx, store } = await setup(t, 'FROM busybox:latest\nCOPY <<EOF /etc/motd\nWelcome\nEOF\nCOPY <<A <<B /dest/\nalpha\nA\nbeta\nB\n');
  await runBuild({ root, contextDir: ctx, tags: ['h'] });
  const image = await store.require('h');
  const layers = await store.layerChain(image);
  assert.equal(readFileSync(join(store.overlay.dirOf(layers[1]!.cacheId), 'diff/etc/motd'), 'utf8'), 'Welcome\n');
  assert.equal(readFileSync(await topFile(store, 'h', 'dest/A'), 'utf8'), 'alpha\n');
  assert.equal(readFileSync(await topFile(store, 'h', 'dest/B'), 'utf8'), 'beta\n');
  assert.match(image.config.history[1]!.created_by!, /COPY file:[0-9a-f]{64} in \/etc\/motd $/);
});

test('ADD <url>: name from the URL, mode 0600, mtime from Last-Modified, --checksum verified first', { skip }, async (t) => {
  const body = 'downloaded\n';
  const server = createServer((req, res) => {
    if (req.url === '/files/data.txt') {
      res.writeHead(200, { 'Last-Modified': 'Tue, 01 Oct 2024 10:00:00 GMT', 'Content-Length': String(body.length) });
      res.end(body);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sha = 'sha256:' + (await import('node:crypto')).createHash('sha256').update(body).digest('hex');
  const { root, ctx, store } = await setup(t, `FROM busybox:latest\nADD --checksum=${sha} ${base}/files/data.txt /srv/\n`);
  await runBuild({ root, contextDir: ctx, tags: ['u'] });
  const file = await topFile(store, 'u', 'srv/data.txt');
  assert.equal(readFileSync(file, 'utf8'), body);
  assert.equal((statSync(file).mode & 0o777).toString(8), '600');
  assert.equal(statSync(file).mtimeMs, Date.parse('2024-10-01T10:00:00Z'));

  writeFileSync(join(ctx, 'Dockerfile'), `FROM busybox:latest\nADD --checksum=sha256:${'0'.repeat(64)} ${base}/files/data.txt /srv/\n`);
  await assert.rejects(runBuild({ root, contextDir: ctx, tags: ['bad'] }), (e: unknown) => e instanceof TsbuildError && /digest mismatch/.test(e.message));
  writeFileSync(join(ctx, 'Dockerfile'), `FROM busybox:latest\nADD ${base}/missing /srv/\n`);
  await assert.rejects(runBuild({ root, contextDir: ctx, tags: ['bad'] }), /404/);
  assert.equal(await store.resolve('bad'), undefined);
});
