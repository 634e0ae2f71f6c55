/**
 * bin/tsbuild as users run it: the sh launcher, dist/cli/launch.cjs and the code-cached
 * CommonJS bundle (built by `npm run build`, which `npm ci` runs). A real build with a COPY
 * checks that rootfs workers start through the bundle too (needs root, like every real build).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildFixture, realBuildSkip } from '../support/build-fixture.js';

const REPO = new URL('../..', import.meta.url).pathname;
const BIN = join(REPO, 'bin/tsbuild');
const CACHE = join(REPO, 'dist/cli/tsbuild.cjs.v8cache');
const builtSkip = existsSync(join(REPO, 'dist/cli/launch.cjs')) && existsSync(join(REPO, 'dist/cli/tsbuild.cjs')) ? undefined : 'needs `npm run build` (npm ci runs it)';

const dockerfile = 'FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n';

test('bin/tsbuild: a run writes the code cache, later runs accept it and agree', { skip: builtSkip }, () => {
  rmSync(CACHE, { force: true });
  const parse = () => spawnSync(BIN, ['parse', '-f', '-', '--json'], { input: dockerfile, encoding: 'utf8' });
  const first = parse();
  assert.equal(first.status, 0, first.stderr);
  assert.ok(statSync(CACHE).size > 100_000, 'the code cache is written after the first run');
  const cacheBytes = readFileSync(CACHE);
  const second = parse();
  assert.equal(second.status, 0, second.stderr);
  assert.equal(second.stdout, first.stdout);
  // Accepted, so not rewritten.
  assert.deepEqual(readFileSync(CACHE), cacheBytes);
});

test('bin/tsbuild: a cache from elsewhere (stale or garbage) is replaced, the run unaffected', { skip: builtSkip }, () => {
  execFileSync('sh', ['-c', `head -c 5000 /dev/urandom > '${CACHE}'`]);
  const r = spawnSync(BIN, ['parse', '-f', '-'], { input: dockerfile, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /RUN +run → layer +\/bin\/sh -c cat \/a\.txt > \/b\.txt/);
  assert.ok(statSync(CACHE).size > 100_000);
});

test('bin/tsbuild: NODE_EXTRA_CA_CERTS reaches the CLI as TSBUILD_EXTRA_CA_CERTS, not node', { skip: builtSkip }, () => {
  const out = execFileSync('sh', ['-c', `sed 's|^exec node .*|exec env|' '${BIN}' > /tmp/tsbuild-launcher-env.sh && NODE_EXTRA_CA_CERTS=/x/ca.pem sh /tmp/tsbuild-launcher-env.sh; rm -f /tmp/tsbuild-launcher-env.sh`], { encoding: 'utf8' });
  assert.match(out, /^TSBUILD_EXTRA_CA_CERTS=\/x\/ca\.pem$/m);
  assert.doesNotMatch(out, /^NODE_EXTRA_CA_CERTS=/m);
});

test('bin/tsbuild: a build with a COPY (its rootfs worker runs from the bundle) and a cached rebuild', { skip: builtSkip ?? realBuildSkip, timeout: 120_000 }, async (t) => {
  const { root, ctx } = await buildFixture(t, { Dockerfile: dockerfile, 'a.txt': 'hello\n' }, 'tsbuild-launcher-');
  const build = () => spawnSync(BIN, ['build', '--root', root, '-q', '-t', 'launched', ctx], { encoding: 'utf8', env: { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' } });
  const first = build();
  assert.equal(first.status, 0, first.stderr);
  const id = first.stdout.trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  // An unreadable NODE_EXTRA_CA_CERTS no longer costs (or warns on) a build that downloads nothing.
  assert.doesNotMatch(first.stderr, /extra certs/i);
  const second = build();
  assert.equal(second.status, 0, second.stderr);
  assert.equal(second.stdout.trim(), id);
  const run = spawnSync(BIN, ['run', '--root', root, 'launched', 'cat', '/b.txt'], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, 'hello\n');
});

test("the README's main job: examples/test-image/run.sh builds, shows and runs test-image", { skip: builtSkip ?? realBuildSkip, timeout: 180_000 }, (t) => {
  const root = mkdtempSync(join(tmpdir(), 'tsbuild-mainjob-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const r = spawnSync('bash', [join(REPO, 'examples/test-image/run.sh')], { encoding: 'utf8', env: { ...process.env, TSBUILD_ROOT: root } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Successfully tagged test-image:latest/);
  assert.match(r.stdout, /^started$/m);
});

test('bin/tsbuild --version', { skip: builtSkip }, () => {
  const r = spawnSync(BIN, ['--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version}\n`);
});
