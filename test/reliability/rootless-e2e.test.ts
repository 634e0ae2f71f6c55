/**
 * The e2e differential suite (test/e2e/differential.test.ts) with tsbuild run as the
 * unprivileged CI user (TSBUILD_E2E_AS_USER): docker 20.10 as root against rootless tsbuild,
 * layer by layer, configs, history, cache, `tsbuild run` output; then a dockerd lists and saves
 * the images. The whole corpus but run-devices (mknod of real devices cannot work rootless, as
 * with rootless docker; the harness skips it in this mode). TSBUILD_ROOTLESS_E2E_CASES=a,b runs
 * only those cases.
 *
 * Timing (2 vCPU, otherwise idle): 25 cases + cache + dockerd check in ≈ 200 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dockerUnavailableReason } from '../support/dockerd.js';
import { testUser } from '../support/rootless.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const USER_NAME = process.env.TSBUILD_ROOTLESS_USER ?? 'tsbuild-ci';
const chosen = process.env.TSBUILD_ROOTLESS_E2E_CASES ?? 'all';

const user = testUser(USER_NAME);
const skip = dockerUnavailableReason() ?? (typeof user === 'string' ? user : undefined);

test(`e2e differential with tsbuild as ${USER_NAME} (rootless)`, { skip: skip ?? false, timeout: 900_000 }, async (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env, TSBUILD_E2E_AS_USER: USER_NAME };
  // A test file's own `node --test` would otherwise skip the files it is given.
  delete env.NODE_TEST_CONTEXT;
  if (chosen === 'all') delete env.TSBUILD_E2E_CASES;
  else env.TSBUILD_E2E_CASES = chosen;
  const started = Date.now();
  const { code, output } = await new Promise<{ code: number; output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', 'test/e2e/differential.test.ts'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c ?? -1, output: Buffer.concat(chunks).toString('utf8') }));
  });
  const lines = output.split('\n');
  for (const l of lines.filter((x) => /^ {2}[✔✖﹣]|timings/.test(x))) t.diagnostic(l.trim());
  t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s`);
  const skipped = lines.filter((l) => /^ {2}﹣/.test(l) && !/# (rootless: |needs )/.test(l));
  assert.equal(code, 0, `the rootless e2e run failed:\n${lines.slice(-150).join('\n')}`);
  assert.match(output, /ℹ pass [1-9]/, 'cases ran');
  assert.deepEqual(skipped, [], 'no case skipped except those that cannot work rootless or need a missing host tool');
});
