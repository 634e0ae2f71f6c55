// Golden plans: every case under test/fixtures/parse is planned and compared with
// its expected.json; every case under test/fixtures/parse-errors must fail with the
// message in expected-error.txt. UPDATE_GOLDEN=1 rewrites the expectations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileError, TsbuildError } from '../../src/errors.js';
import { planBuild } from '../../src/plan/planner.js';
import { formatPlanJson } from '../../src/cli/format-plan.js';

const root = new URL('../fixtures/', import.meta.url).pathname;
const update = process.env['UPDATE_GOLDEN'] === '1';
const platform = { os: 'linux', architecture: 'amd64' };

interface CaseJson {
  buildArgs?: Record<string, string>;
  target?: string;
  historyStyle?: 'classic' | 'buildkit';
}

function readCase(dir: string): CaseJson {
  const p = join(dir, 'case.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as CaseJson) : {};
}

function plan(dir: string) {
  const c = readCase(dir);
  return planBuild(readFileSync(join(dir, 'Dockerfile'), 'utf8'), {
    file: 'Dockerfile',
    platform,
    buildPlatform: platform,
    ...(c.buildArgs ? { buildArgs: c.buildArgs } : {}),
    ...(c.target ? { target: c.target } : {}),
    ...(c.historyStyle ? { historyStyle: c.historyStyle } : {}),
  });
}

const cases = (sub: string): string[] =>
  existsSync(join(root, sub)) ? readdirSync(join(root, sub)).filter((n) => existsSync(join(root, sub, n, 'Dockerfile'))).sort() : [];

test('the corpus is large enough', () => {
  assert.ok(cases('parse').length >= 60, `only ${cases('parse').length} positive cases`);
  assert.ok(cases('parse-errors').length >= 20, `only ${cases('parse-errors').length} negative cases`);
});

for (const name of cases('parse')) {
  test(`plan: ${name}`, () => {
    const dir = join(root, 'parse', name);
    const actual = formatPlanJson(plan(dir));
    const expectedPath = join(dir, 'expected.json');
    if (update || !existsSync(expectedPath)) writeFileSync(expectedPath, actual);
    assert.equal(actual, readFileSync(expectedPath, 'utf8'));
  });
}

for (const name of cases('parse-errors')) {
  test(`error: ${name}`, () => {
    const dir = join(root, 'parse-errors', name);
    let error: unknown;
    try {
      plan(dir);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof TsbuildError, `expected a TsbuildError, got ${String(error)}`);
    const actual = error instanceof DockerfileError ? error.format().split('\n')[0]! : `tsbuild: ${error.message}`;
    const expectedPath = join(dir, 'expected-error.txt');
    if (update) writeFileSync(expectedPath, actual + '\n');
    assert.equal(actual, readFileSync(expectedPath, 'utf8').trim());
  });
}
