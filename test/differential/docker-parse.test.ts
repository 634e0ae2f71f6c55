/**
 * Differential test of the Dockerfile front end against a real Docker daemon
 * (Debian's docker.io 20.10, started privately by test/support/dockerd.ts).
 *
 *   test/fixtures/parse/<case>/Dockerfile          docker must build it; then the target
 *                                                  stage's config and the history the
 *                                                  Dockerfile added must equal our plan's
 *   test/fixtures/parse-errors/<case>/Dockerfile   docker must reject it (unless case.json
 *                                                  says "dockerAccepts": true, when docker
 *                                                  must accept it)
 *   <case>/case.json   { builder?: "classic"|"buildkit"|"none", buildArgs?, target?, why?, dockerAccepts? }
 *   <case>/context/    build context (default: an empty dir)
 *
 * Every FROM names the same offline busybox image (empty config), imported under the
 * tags in DEFAULT_BASE_TAGS plus any literal FROM reference found in the fixtures.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';

import { planBuild } from '../../src/plan/planner.js';
import type { Plan, PlannedStage, PlannedStep } from '../../src/plan/types.js';
import { emptyContainerConfig, type ContainerConfig } from '../../src/image/config.js';
import { DEFAULT_BASE_TAGS, dockerUnavailableReason, importBusyboxBase, startDockerd, type Dockerd } from '../support/dockerd.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const BUILD_TIMEOUT_MS = 120_000;

type Builder = 'classic' | 'buildkit' | 'none';

interface CaseJson {
  builder?: Builder;
  buildArgs?: Record<string, string | null>;
  target?: string;
  why?: string;
  dockerAccepts?: boolean;
}

interface Case {
  kind: 'parse' | 'parse-errors';
  name: string;
  dir: string;
  dockerfile: string;
  source: string;
  context?: string;
  json: CaseJson;
}

function loadCases(kind: Case['kind']): Case[] {
  const root = join(FIXTURES, kind);
  if (!existsSync(root)) return [];
  const out: Case[] = [];
  for (const name of readdirSync(root).sort()) {
    const dir = join(root, name);
    const dockerfile = join(dir, 'Dockerfile');
    if (!statSync(dir).isDirectory() || !existsSync(dockerfile)) continue;
    const jsonPath = join(dir, 'case.json');
    const json = existsSync(jsonPath) ? (JSON.parse(readFileSync(jsonPath, 'utf8')) as CaseJson) : {};
    const context = join(dir, 'context');
    out.push({
      kind,
      name,
      dir,
      dockerfile,
      source: readFileSync(dockerfile, 'utf8'),
      ...(existsSync(context) ? { context } : {}),
      json,
    });
  }
  return out;
}

const cases = [...loadCases('parse'), ...loadCases('parse-errors')];

// ---------------------------------------------------------------------------------------------
// Base image tags: the defaults plus every reference the fixtures' FROM lines can resolve to.

const REF_RE = /^[a-z0-9][a-z0-9._/-]*(?::[0-9]+\/[a-z0-9._/-]+)?(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/;

function fromRefs(c: Case): string[] {
  const lines = c.source.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  const argDefaults = new Map<string, string>();
  for (const l of lines) {
    const m = /^\s*ARG\s+(.*)$/i.exec(l);
    if (!m) continue;
    for (const tok of (m[1] ?? '').trim().split(/\s+/)) {
      const eq = tok.indexOf('=');
      if (eq > 0) argDefaults.set(tok.slice(0, eq), tok.slice(eq + 1).replace(/^["']|["']$/g, ''));
    }
  }
  for (const [k, v] of Object.entries(c.json.buildArgs ?? {})) if (typeof v === 'string') argDefaults.set(k, v);
  const stages = new Set<string>();
  const refs: string[] = [];
  for (const l of lines) {
    const m = /^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(l);
    if (!m || m[1] === undefined) continue;
    let ref = m[1];
    ref = ref.replace(/\$\{(\w+)(?::?[-+]([^}]*))?\}|\$(\w+)/g, (_all, a?: string, word?: string, b?: string) => {
      const v = argDefaults.get((a ?? b)!);
      return v ?? word ?? '';
    });
    if (m[2]) stages.add(m[2].toLowerCase());
    if (ref === '' || ref.includes('$') || ref.includes('@') || ref.toLowerCase() === 'scratch' || stages.has(ref.toLowerCase())) continue;
    if (!REF_RE.test(ref)) continue;
    refs.push(ref.includes(':') && !/:[0-9]+\/[^:]*$/.test(ref) ? ref : `${ref}:latest`);
  }
  return refs;
}

/** FROM references in the fixtures that DEFAULT_BASE_TAGS does not cover. */
function fixtureBaseRefs(): string[] {
  const tags = new Set<string>();
  for (const c of cases) for (const r of fromRefs(c)) if (!DEFAULT_BASE_TAGS.includes(r)) tags.add(r);
  return [...tags];
}

// ---------------------------------------------------------------------------------------------

interface BuildResult {
  code: number;
  output: string;
  tag: string;
}

let tagSeq = 0;

async function dockerBuild(d: Dockerd, c: Case, emptyContext: string): Promise<BuildResult> {
  const builder = c.json.builder ?? 'classic';
  const tag = `tsbuild-diff/case${++tagSeq}:latest`;
  const args = ['build', '-f', c.dockerfile, '-t', tag];
  if (builder === 'buildkit') args.push('--progress=plain', '--network=host');
  if (c.json.target !== undefined) args.push('--target', c.json.target);
  for (const [k, v] of Object.entries(c.json.buildArgs ?? {})) args.push('--build-arg', v === null ? k : `${k}=${v}`);
  args.push(c.context ?? emptyContext);
  const r = await d.docker(args, {
    env: { DOCKER_BUILDKIT: builder === 'buildkit' ? '1' : '0' },
    timeoutMs: BUILD_TIMEOUT_MS,
  });
  return { code: r.code, output: `${r.stdout}\n${r.stderr}`.trim(), tag };
}

function tail(s: string, n = 25): string {
  return s.split('\n').slice(-n).join('\n');
}

interface ImageJson {
  config?: Partial<ContainerConfig>;
  history?: Array<{ created_by?: string; empty_layer?: boolean; comment?: string }>;
}

async function readImage(d: Dockerd, ref: string): Promise<{ inspectConfig: Partial<ContainerConfig>; image: ImageJson }> {
  const r = await d.docker(['image', 'inspect', '--format', '{{json .}}', ref]);
  assert.equal(r.code, 0, `docker image inspect ${ref}: ${r.stderr}`);
  const info = JSON.parse(r.stdout) as { Id: string; Config?: Partial<ContainerConfig> };
  // `docker image inspect` has no history with empty_layer flags; the image config JSON has.
  const hex = info.Id.replace(/^sha256:/, '');
  const image = JSON.parse(await readFile(join(d.dataRoot, 'image', 'overlay2', 'imagedb', 'content', 'sha256', hex), 'utf8')) as ImageJson;
  return { inspectConfig: info.Config ?? {}, image };
}

const CONFIG_FIELDS = [
  'Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels',
  'StopSignal', 'Healthcheck', 'Shell', 'OnBuild',
] as const;

/** The compared fields; absent ≡ null (Go's omitempty), zero healthcheck durations ≡ absent. */
function pickConfig(c: Partial<ContainerConfig>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of CONFIG_FIELDS) {
    let v: unknown = c[f];
    if (f === 'Healthcheck' && v && typeof v === 'object') {
      v = Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined && x !== 0));
    }
    out[f] = v === undefined ? null : v;
  }
  return out;
}

/** Steps whose history entries make up the target image after its root base's own entries. */
function targetChain(plan: Plan): { steps: PlannedStep[]; rootIsImage: boolean } {
  const chain: number[] = [];
  let i: number | undefined = plan.target;
  const seen = new Set<number>();
  let rootIsImage = false;
  while (i !== undefined) {
    if (seen.has(i)) throw new Error(`stage base cycle at stage ${i}`);
    seen.add(i);
    chain.unshift(i);
    const stage: PlannedStage | undefined = plan.stages[i];
    assert.ok(stage, `plan has no stage ${i}`);
    if (stage.base.kind === 'stage') i = stage.base.index;
    else {
      rootIsImage = stage.base.kind === 'image';
      i = undefined;
    }
  }
  return { steps: chain.flatMap((s) => plan.stages[s]!.steps), rootIsImage };
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function createdByMatches(ours: string, docker: string): boolean {
  if (!ours.includes('<content-hash>')) return ours === docker;
  const re = new RegExp('^' + ours.split('<content-hash>').map(escapeRe).join('(?:file|dir|multi):[0-9a-f]{64}') + '$');
  return re.test(docker);
}

function compareHistory(steps: PlannedStep[], added: Array<{ created_by?: string; empty_layer?: boolean }>): string[] {
  const problems: string[] = [];
  const n = Math.max(steps.length, added.length);
  for (let i = 0; i < n; i++) {
    const s = steps[i];
    const h = added[i];
    const dockerText = h ? `${JSON.stringify(h.created_by ?? '')} empty_layer=${h.empty_layer === true}` : '(none)';
    const oursText = s ? `${JSON.stringify(s.createdBy)} emptyLayer=${String(s.emptyLayer)} (line ${s.line})` : '(none)';
    let bad = !s || !h;
    if (s && h) {
      if (!createdByMatches(s.createdBy, h.created_by ?? '')) bad = true;
      if (s.emptyLayer !== 'if-unchanged' && s.emptyLayer !== (h.empty_layer === true)) bad = true;
    }
    if (bad) problems.push(`  #${i}\n    docker: ${dockerText}\n    ours:   ${oursText}`);
  }
  return problems;
}

interface Base {
  /** History entries of the imported base image (all FROM tags name it). */
  historyLength: number;
  /** Its config as docker holds it (empty: `docker import` without --change). */
  config: ContainerConfig;
}

async function checkPositive(d: Dockerd, c: Case, emptyContext: string, base: Base): Promise<void> {
  const builder = c.json.builder ?? 'classic';
  const r = await dockerBuild(d, c, emptyContext);
  const syntaxHint = /^#\s*syntax\s*=/im.test(c.source)
    ? '\n(note: the Dockerfile has a `# syntax=` directive; BuildKit in docker 20.10 cannot pull frontends offline)'
    : '';
  assert.equal(r.code, 0, `docker (${builder}) failed to build ${c.kind}/${c.name}:\n${tail(r.output)}${syntaxHint}`);

  const plan = planBuild(c.source, {
    file: 'Dockerfile',
    buildArgs: Object.fromEntries(Object.entries(c.json.buildArgs ?? {}).map(([k, v]) => [k, v ?? undefined])),
    ...(c.json.target !== undefined ? { target: c.json.target } : {}),
    historyStyle: builder === 'buildkit' ? 'buildkit' : 'classic',
    resolveImage: () => base.config,
  });
  const ours = plan.stages[plan.target];
  assert.ok(ours, `plan.target ${plan.target} is not a stage`);

  const { inspectConfig, image } = await readImage(d, r.tag);
  const failures: string[] = [];

  const theirs = pickConfig(inspectConfig);
  const mine = pickConfig(ours.config);
  const fieldDiffs = CONFIG_FIELDS.filter((f) => !isDeepStrictEqual(mine[f], theirs[f])).map(
    (f) => `  ${f}\n    docker: ${JSON.stringify(theirs[f])}\n    ours:   ${JSON.stringify(mine[f])}`,
  );
  if (fieldDiffs.length > 0) failures.push(`config differs:\n${fieldDiffs.join('\n')}`);

  const { steps, rootIsImage } = targetChain(plan);
  const history = image.history ?? [];
  const added = history.slice(rootIsImage ? base.historyLength : 0);
  const problems = compareHistory(steps, added);
  if (problems.length > 0) {
    failures.push(`history differs: docker added ${added.length} entries, we planned ${steps.length}\n${problems.join('\n')}`);
  }
  if (failures.length > 0) assert.fail(`${c.kind}/${c.name} (${builder} builder):\n${failures.join('\n')}`);
}

async function checkNegative(t: TestContext, d: Dockerd, c: Case, emptyContext: string): Promise<void> {
  const builder = c.json.builder ?? 'classic';
  const r = await dockerBuild(d, c, emptyContext);
  // docker's own words, to read next to expected-error.txt
  if (r.code !== 0) t.diagnostic(`docker: ${tail(r.output, 1)}`);
  if (c.json.dockerAccepts) {
    assert.equal(r.code, 0, `case.json says docker (${builder}) accepts ${c.kind}/${c.name}, but it failed:\n${tail(r.output)}`);
  } else {
    assert.notEqual(r.code, 0, `docker (${builder}) built ${c.kind}/${c.name}, which we expect to be rejected:\n${tail(r.output, 10)}`);
  }
}

const unavailable = dockerUnavailableReason();
const skip = unavailable ? `docker unavailable: ${unavailable}` : cases.length === 0 ? 'no fixtures under test/fixtures/parse{,-errors}' : false;

test('Dockerfile front end agrees with docker 20.10', { skip, concurrency: 2, timeout: 9 * 60_000 }, async (t) => {
  const emptyContext = mkdtempSync('/tmp/tsbuild-ctx-');
  t.after(() => rmSync(emptyContext, { recursive: true, force: true }));
  const d = await startDockerd();
  // Always stopped by pid, whatever the cases do (the harness also has an exit hook).
  t.after(() => d.stop());
  const baseId = await importBusyboxBase(d, DEFAULT_BASE_TAGS);
  for (const ref of fixtureBaseRefs()) {
    const r = await d.docker(['tag', baseId, ref]);
    if (r.code !== 0) t.diagnostic(`could not tag the base as ${ref}: ${r.stderr.trim()}`);
  }
  const baseImage = await readImage(d, baseId);
  const base: Base = {
    historyLength: baseImage.image.history?.length ?? 0,
    config: { ...emptyContainerConfig(), ...baseImage.inspectConfig },
  };

  await Promise.all(
    cases.map((c) => {
      const builder = c.json.builder ?? 'classic';
      const opts = builder === 'none' ? { skip: `docker cannot check this case here: ${c.json.why ?? '(no why given)'}` } : {};
      return t.test(`${c.kind}/${c.name}`, opts, async (st) => {
        if (c.kind === 'parse') await checkPositive(d, c, emptyContext, base);
        else await checkNegative(st, d, c, emptyContext);
      });
    }),
  );
});
