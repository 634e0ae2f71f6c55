/**
 * End-to-end differential suite: every Dockerfile under test/e2e/cases/ is built by
 * Docker 20.10's classic builder (`DOCKER_BUILDKIT=0 /usr/bin/docker build`, private
 * dockerd) and by tsbuild (`runBuild`), and the results must agree:
 *
 *  - per layer, the file trees under `overlay2/<cache-id>/diff` (path, type incl.
 *    whiteouts and opaque dirs, mode, uid, gid, size, sha256, link target, hardlink
 *    groups, device numbers, xattrs, layerdb size); mtimes are ignored in RUN layers
 *    and wherever Docker stamped the wall clock (see mtimeRule);
 *  - every COPY/ADD layer whose diffID Docker reproduces (two `--no-cache` builds
 *    agree) has the identical diffID in ours;
 *  - the image config (`config` and `container_config` except Image/Hostname, the
 *    top-level keys, architecture, os, author) and the history (created_by with its
 *    `file:`/`dir:` hashes, empty_layer, author, comment);
 *  - then a dockerd opened on tsbuild's root lists every image, `docker run`s each
 *    case's image (case.json `run`), and `docker save` of each has layer.tars that
 *    hash to the diffIDs (i.e. every tar-split.json.gz reassembles exactly);
 *  - cache: an unchanged rebuild and a touch-only rebuild are fully cached (same ID,
 *    no new imagedb entry, as many steps reported cached as docker's "Using cache"),
 *    and changing one file used by a COPY in the middle rebuilds only from that COPY
 *    on (new imagedb entries = steps from it on, docker agreeing).
 *
 * Ours is runBuild with modeStyle 'typed': /usr/bin/docker 20.10 sends the context
 * tar with file-type bits in its modes, and those enter the `file:`/`dir:` hashes.
 *
 * Case layout: test/e2e/cases/<name>/
 *   Dockerfile, context files, optional .dockerignore (the case dir is the context,
 *     staged into a temp dir without case.json and setup.sh);
 *   setup.sh (optional): run by `sh -e` inside the staged context, for what git
 *     cannot hold (empty dirs, modes other than 0644/0755, hardlinks, fifos,
 *     archives, capabilities);
 *   case.json (optional): { buildArgs?, target?, run?: { args, expect }, covers,
 *     requires?: [host commands setup.sh needs; the case is skipped without them] }.
 * Staging normalises modes (0755 dirs, 0755/0644 files) before setup.sh, then sets
 * every mtime to 1700000000, so contexts are the same on every machine.
 *
 * Environment:
 *   TSBUILD_E2E_OURS=docker   make "ours" a second private dockerd (classic builder)
 *                             instead of tsbuild: a self-test of the harness (every
 *                             check must pass docker against docker);
 *   TSBUILD_E2E_CASES=a,b     only these cases (plus cache-chain for the cache test);
 *   TSBUILD_E2E_DUMP=1        print Docker's layer trees (what a new case makes Docker do);
 *   TSBUILD_E2E_AS_USER=name  rootless: ours is the tsbuild CLI run as that unprivileged user
 *                             (runuser; it re-executes itself in a user namespace), on a root
 *                             and contexts the user owns; ours' layer trees are compared as
 *                             the namespace sees them (test/support/rootless.ts); the images
 *                             are run with `tsbuild run` as the user (a rootful dockerd cannot
 *                             run a rootless store), dockerd still lists and saves them; cases
 *                             that cannot work in a user namespace are skipped (ROOTLESS_SKIP).
 *
 * Timings (2 vCPU VM, 26 cases; each case = two `docker build --no-cache`, one ours
 * build, the comparison): tsbuild mode ≈ 130 s in all (cases ≈ 115 s, 1–10 s each;
 * cache test ≈ 5 s; dockerd on ours' root: list + run + save ≈ 12 s); docker-vs-
 * docker mode ≈ 160 s. Budget: 8 minutes (the test's own timeout is 15).
 *
 * What Docker does that shapes these rules: test/e2e/README.md.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

import { ImageStore } from '../../src/store/store.js';
import { importRootfs } from '../../src/store/import.js';
import { runBuild } from '../../src/exec/run-build.js';
import type { BuildEvents } from '../../src/exec/build.js';
import { CONTEXT_MTIME, hasCommand, loadCases, stageContext, type Case, type CaseJson } from '../support/e2e-cases.js';
import { chownTree, openPath, runAsUser, testUser, viewInside, type TestUser } from '../support/rootless.js';
import { busyboxRootfsTar, dockerUnavailableReason, importBusyboxBase, startDockerd, type Dockerd } from '../support/dockerd.js';
import {
  compareTrees,
  describeTree,
  formatTree,
  imageIdForRef,
  layerHistory,
  listImageIds,
  readImageConfigBytes,
  readImageLayers,
  readImageParent,
  type HistoryEntry,
  type ImageConfigJson,
  type LayerEntry,
  type MtimeRule,
} from '../support/e2e-layers.js';

const CACHE_CASE = 'cache-chain';
const MODE: 'tsbuild' | 'docker' = process.env.TSBUILD_E2E_OURS === 'docker' ? 'docker' : 'tsbuild';
const DUMP = process.env.TSBUILD_E2E_DUMP === '1';
const AS_USER = MODE === 'tsbuild' ? process.env.TSBUILD_E2E_AS_USER || undefined : undefined;
const USER: TestUser | string | undefined = AS_USER !== undefined ? testUser(AS_USER) : undefined;
const RUN_AS: TestUser | undefined = typeof USER === 'object' ? USER : undefined;
/** Rootless: what cannot work in a user namespace (as with rootless dockerd). */
const ROOTLESS_SKIP: Record<string, string> = { 'run-devices': 'mknod of char/block devices is not allowed in a user namespace' };
/** Ours' layer trees as compared: as read, or (rootless) as the user's namespace sees them. */
const oursView = (entries: LayerEntry[]): LayerEntry[] => (RUN_AS ? viewInside(RUN_AS, entries) : entries);

// ---------------------------------------------------------------------------------------------
// Cases

const CASES = loadCases(process.env.TSBUILD_E2E_CASES?.split(',').map((x) => x.trim()).filter(Boolean), CACHE_CASE);

// ---------------------------------------------------------------------------------------------
// Builders

interface BuildSpec {
  context: string;
  tag: string;
  json: CaseJson;
  noCache: boolean;
}

interface Built {
  id: string;
  /** Wall-clock window of the build, in whole seconds. */
  from: number;
  to: number;
  /** Steps the build reported as cached (docker: ` ---> Using cache`; tsbuild: events.cached). */
  cached: number;
}

async function mustDocker(d: Dockerd, args: string[], env?: Record<string, string>): Promise<string> {
  const r = await d.docker(args, env ? { env } : {});
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.code}):\n${r.stderr}\n${r.stdout.split('\n').slice(-30).join('\n')}`);
  return r.stdout;
}

async function dockerBuild(d: Dockerd, spec: BuildSpec): Promise<Built> {
  const args = ['build', '-t', spec.tag, '-f', join(spec.context, 'Dockerfile')];
  if (spec.noCache) args.push('--no-cache');
  for (const [k, v] of Object.entries(spec.json.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
  if (spec.json.target !== undefined) args.push('--target', spec.json.target);
  args.push(spec.context);
  const t0 = Date.now();
  const out = await mustDocker(d, args, { DOCKER_BUILDKIT: '0' });
  const t1 = Date.now();
  const id = (await mustDocker(d, ['image', 'inspect', '-f', '{{.Id}}', spec.tag])).trim();
  const cached = out.split('\n').filter((l) => l.trim() === '---> Using cache').length;
  return { id, from: Math.floor(t0 / 1000), to: Math.floor(t1 / 1000), cached };
}

/** The side under test: tsbuild, or (self-test) a second dockerd. */
interface Ours {
  label: string;
  root: string;
  importBase(tar: Buffer): Promise<string>;
  build(spec: BuildSpec): Promise<Built>;
  /** Releases the root (stops dockerd B in docker mode). */
  release(): Promise<void>;
}

async function tsbuildOurs(root: string): Promise<Ours> {
  return {
    label: 'tsbuild',
    root,
    async importBase(tar) {
      const store = await ImageStore.open(root);
      return importRootfs(store, Readable.from([tar]), { reference: 'busybox:latest', platform: { os: 'linux', architecture: 'amd64' } });
    },
    async build(spec) {
      const t0 = Date.now();
      let cached = 0;
      const events: BuildEvents = {
        step: () => undefined,
        cached: () => void cached++,
        running: () => undefined,
        output: () => undefined,
        removing: () => undefined,
        committed: () => undefined,
        warning: () => undefined,
        done: () => undefined,
      };
      const r = await runBuild({
        root,
        contextDir: spec.context,
        dockerfile: join(spec.context, 'Dockerfile'),
        tags: [spec.tag],
        ...(spec.json.buildArgs ? { buildArgs: spec.json.buildArgs } : {}),
        ...(spec.json.target !== undefined ? { target: spec.json.target } : {}),
        noCache: spec.noCache,
        // The context tar of /usr/bin/docker (20.10) carries file-type bits in its
        // modes, which enter the COPY/ADD content hashes in created_by.
        modeStyle: 'typed',
        events,
        quiet: true,
      });
      return { id: r.id, from: Math.floor(t0 / 1000), to: Math.floor(Date.now() / 1000), cached };
    },
    async release() {},
  };
}

/** Rootless: the tsbuild CLI as an unprivileged user (TSBUILD_E2E_AS_USER). */
function userOurs(root: string, u: TestUser): Ours {
  const cli = async (args: string[], input?: Buffer): Promise<string> => {
    const r = await runAsUser(u, args, input ? { input } : {});
    if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} as ${u.name} failed (${r.code}):\n${r.stderr}\n${r.stdout.split('\n').slice(-30).join('\n')}`);
    return r.stdout;
  };
  return {
    label: `tsbuild as ${u.name}`,
    root,
    async importBase(tar) {
      return (await cli(['import', '--root', root, '-', 'busybox:latest'], tar)).trim();
    },
    async build(spec) {
      const args = ['build', '--root', root, '--progress', 'plain', '--tarsum-modes', 'typed', '-t', spec.tag, '-f', join(spec.context, 'Dockerfile')];
      if (spec.noCache) args.push('--no-cache');
      for (const [k, v] of Object.entries(spec.json.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
      if (spec.json.target !== undefined) args.push('--target', spec.json.target);
      args.push(spec.context);
      const t0 = Date.now();
      const out = await cli(args);
      const t1 = Date.now();
      const id = await imageIdForRef(root, spec.tag);
      if (id === undefined) throw new Error(`tsbuild as ${u.name} did not tag ${spec.tag}`);
      const cached = out.split('\n').filter((l) => l.trim() === '---> Using cache').length;
      return { id, from: Math.floor(t0 / 1000), to: Math.floor(t1 / 1000), cached };
    },
    async release() {},
  };
}

async function dockerOurs(root: string, daemons: Dockerd[]): Promise<Ours> {
  const b = await startDockerd({ dataRoot: root });
  daemons.push(b);
  return {
    label: 'dockerd B',
    root,
    importBase: () => importBusyboxBase(b, ['busybox:latest']),
    build: (spec) => dockerBuild(b, spec),
    release: () => b.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// Comparison

const NOP_LAYER = /#\(nop\) (COPY|ADD|WORKDIR) /;
const COPY_ADD = /#\(nop\) (COPY|ADD) /;

/**
 * Which mtimes to compare in a layer made by `createdBy`. RUN layers: none (their
 * files carry the time the command ran). COPY/ADD/WORKDIR layers: all, except
 * entries whose mtime falls inside Docker's build window: Docker stamps the wall
 * clock on directories it creates (WORKDIR, COPY destinations and missing parents)
 * and on existing parents that overlay copies up, and COPY --from carries the
 * mtimes a RUN of the same build gave its files. Context files keep their mtime
 * (1700000000, set by staging), archives theirs.
 */
function mtimeRule(createdBy: string, docker: Built): MtimeRule {
  if (!NOP_LAYER.test(createdBy)) return 'ignore';
  return (e: LayerEntry) => !(e.mtime >= docker.from && e.mtime <= docker.to);
}

function without(obj: Record<string, unknown> | null | undefined, keys: string[]): Record<string, unknown> | null | undefined {
  if (!obj) return obj;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (!keys.includes(k)) out[k] = v;
  return out;
}

function j(v: unknown): string {
  return JSON.stringify(v);
}

function compareObjects(label: string, expected: Record<string, unknown> | null | undefined, actual: Record<string, unknown> | null | undefined): string[] {
  if (expected === null || expected === undefined || actual === null || actual === undefined) {
    return expected === actual ? [] : [`${label}: ${j(expected)} ≠ ${j(actual)}`];
  }
  const out: string[] = [];
  const ek = Object.keys(expected);
  const ak = Object.keys(actual);
  if (!isDeepStrictEqual(ek, ak)) out.push(`${label} keys: ${j(ek)} ≠ ${j(ak)}`);
  for (const k of new Set([...ek, ...ak])) {
    if (!isDeepStrictEqual(expected[k], actual[k])) out.push(`${label}.${k}: ${j(expected[k])} ≠ ${j(actual[k])}`);
  }
  return out;
}

function historyLine(h: HistoryEntry): Record<string, unknown> {
  return { created_by: h.created_by ?? '', empty_layer: h.empty_layer ?? false, author: h.author ?? '', comment: h.comment ?? '' };
}

interface LayerReport {
  index: number;
  createdBy: string;
  copyAdd: boolean;
  dockerReproducible?: boolean;
  diffIdEqual: boolean;
}

interface CompareResult {
  problems: string[];
  layers: LayerReport[];
}

/**
 * Compares docker's image with ours. `docker2` (another --no-cache docker build of the
 * same case) decides which COPY/ADD diffIDs Docker reproduces, so ours must match.
 */
async function compareImages(dockerRoot: string, docker: Built, oursRoot: string, ours: Built, docker2?: Built, dockerRoot2 = dockerRoot): Promise<CompareResult> {
  const problems: string[] = [];
  const d = await readImageLayers(dockerRoot, docker.id);
  const o = await readImageLayers(oursRoot, ours.id);
  const d2 = docker2 ? await readImageLayers(dockerRoot2, docker2.id) : undefined;
  const dc = d.config;
  const oc = o.config;

  // Config.
  problems.push(...compareObjects('top-level keys', Object.fromEntries(Object.keys(dc).map((k) => [k, true])), Object.fromEntries(Object.keys(oc).map((k) => [k, true]))));
  for (const k of ['architecture', 'os', 'variant', 'author'] as const) if (!isDeepStrictEqual(dc[k], oc[k])) problems.push(`${k}: ${j(dc[k])} ≠ ${j(oc[k])}`);
  problems.push(...compareObjects('config', without(dc.config, ['Image']), without(oc.config, ['Image'])));
  problems.push(...compareObjects('container_config', without(dc.container_config, ['Image', 'Hostname']), without(oc.container_config, ['Image', 'Hostname'])));
  // config.Image names the previous step's image, which is the image's parent.
  const dParent = await readImageParent(dockerRoot, docker.id);
  const oParent = await readImageParent(oursRoot, ours.id);
  if ((dc.config?.['Image'] === dParent) !== (oc.config?.['Image'] === oParent)) {
    problems.push(`config.Image vs metadata parent: docker ${j(dc.config?.['Image'])}/${j(dParent)}, ours ${j(oc.config?.['Image'])}/${j(oParent)}`);
  }
  if ((dParent === undefined) !== (oParent === undefined)) problems.push(`metadata parent: docker ${j(dParent)}, ours ${j(oParent)}`);

  // History.
  const dh = (dc.history ?? []).map(historyLine);
  const oh = (oc.history ?? []).map(historyLine);
  if (dh.length !== oh.length) problems.push(`history length ${dh.length} ≠ ${oh.length}`);
  for (let i = 0; i < Math.max(dh.length, oh.length); i++) {
    if (!isDeepStrictEqual(dh[i], oh[i])) problems.push(`history[${i}]: docker ${j(dh[i])}\n                ours   ${j(oh[i])}`);
  }

  // Layers.
  const dlh = layerHistory(dc);
  const layers: LayerReport[] = [];
  if (d.layers.length !== o.layers.length) problems.push(`layer count ${d.layers.length} ≠ ${o.layers.length}`);
  for (let i = 0; i < Math.min(d.layers.length, o.layers.length); i++) {
    const dl = d.layers[i]!;
    const ol = o.layers[i]!;
    const createdBy = dlh[i]?.created_by ?? '';
    const copyAdd = COPY_ADD.test(createdBy);
    const rep: LayerReport = { index: i, createdBy, copyAdd, diffIdEqual: dl.diffId === ol.diffId };
    if (copyAdd && d2) {
      rep.dockerReproducible = d2.layers[i]?.diffId === dl.diffId;
      if (rep.dockerReproducible && dl.diffId !== ol.diffId) {
        problems.push(`layer ${i} (${createdBy}): Docker reproduces diffID ${dl.diffId}, ours is ${ol.diffId}`);
      }
    }
    layers.push(rep);
    if (dl.size !== ol.size) problems.push(`layer ${i} (${createdBy}): layerdb size ${dl.size} ≠ ${ol.size}`);
    // The imported base is compared once, in its own subtest.
    if (i === 0 && rep.diffIdEqual && !NOP_LAYER.test(createdBy)) continue;
    const [dt, ot] = await Promise.all([describeTree(dl.diffDir), describeTree(ol.diffDir).then(oursView)]);
    const diffs = compareTrees(dt, ot, { mtime: mtimeRule(createdBy, docker) });
    if (diffs.length) problems.push(`layer ${i} (${createdBy}) tree differs (- docker, + ours):\n    ${diffs.join('\n    ')}`);
  }
  return { problems, layers };
}

function sha256File(path: string): string {
  return 'sha256:' + createHash('sha256').update(readFileSync(path)).digest('hex');
}

// ---------------------------------------------------------------------------------------------

const skip = dockerUnavailableReason() ?? (typeof USER === 'string' ? `rootless: ${USER}` : undefined);

interface CaseState {
  c: Case;
  context: string;
  tag: string;
  docker?: Built;
  docker2?: Built;
  ours?: Built;
}

function tagOf(c: Case, side: string): string {
  return `e2e-${c.name}:${side}`;
}

test(`e2e differential: docker build (classic) vs ${MODE === 'docker' ? 'a second dockerd (self-test)' : 'tsbuild'}`, { skip, timeout: 900_000 }, async (t: TestContext) => {
  const started = Date.now();
  const timings: string[] = [];
  const lap = (what: string, since: number): void => {
    timings.push(`${what}: ${((Date.now() - since) / 1000).toFixed(1)} s`);
  };
  const work = mkdtempSync(join(tmpdir(), 'tsbuild-e2e-'));
  const daemons: Dockerd[] = [];
  t.after(async () => {
    for (const d of daemons) await d.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  const oursRoot = join(work, 'root');
  mkdirSync(oursRoot);
  if (RUN_AS) {
    openPath(work);
    chownTree(oursRoot, RUN_AS);
  }
  let phase = Date.now();
  const a = await startDockerd();
  daemons.push(a);
  const ours = MODE === 'docker' ? await dockerOurs(oursRoot, daemons) : RUN_AS ? userOurs(oursRoot, RUN_AS) : await tsbuildOurs(oursRoot);
  lap('start daemons', phase);

  // ------------------------------------------------------------------ base image
  const baseTar = busyboxRootfsTar();
  let baseDiffId = '';
  await t.test('busybox base: docker import and ours give the same layer', async () => {
    const dockerId = await importBusyboxBase(a, ['busybox:latest']);
    const oursId = await ours.importBase(baseTar);
    const d = await readImageLayers(a.dataRoot, dockerId);
    const o = await readImageLayers(oursRoot, oursId);
    assert.equal(d.layers.length, 1);
    assert.equal(o.layers.length, 1);
    baseDiffId = d.layers[0]!.diffId;
    assert.equal(baseDiffId, 'sha256:' + createHash('sha256').update(baseTar).digest('hex'), 'docker import registers the tar as given');
    assert.equal(o.layers[0]!.diffId, baseDiffId, 'same diffID for the same rootfs tar');
    assert.equal(o.layers[0]!.size, d.layers[0]!.size, 'layerdb size');
    const diffs = compareTrees(await describeTree(d.layers[0]!.diffDir), oursView(await describeTree(o.layers[0]!.diffDir)));
    assert.deepEqual(diffs, [], `base layer trees differ:\n${diffs.join('\n')}`);
    assert.equal(await imageIdForRef(oursRoot, 'busybox:latest'), oursId, 'ours tags busybox:latest');
  });
  if (!baseDiffId) return;

  // ------------------------------------------------------------------ cases
  phase = Date.now();
  const states: CaseState[] = [];
  /** Every tag ours was asked to build, with the ID it returned. */
  const oursTags = new Map<string, string>();
  const reproducibility: string[] = [];
  for (const c of CASES) {
    const missing = (c.json.requires ?? []).filter((cmd) => !hasCommand(cmd));
    const rootlessSkip = RUN_AS ? ROOTLESS_SKIP[c.name] : undefined;
    await t.test(c.name, { skip: missing.length ? `needs ${missing.join(', ')} on the host` : rootlessSkip !== undefined ? `rootless: ${rootlessSkip}` : false }, async (st) => {
      const context = join(work, 'ctx', c.name);
      stageContext(c, context);
      if (RUN_AS) chownTree(context, RUN_AS);
      const state: CaseState = { c, context, tag: tagOf(c, 'ours') };
      states.push(state);
      const spec = (tag: string, noCache = true): BuildSpec => ({ context, tag, json: c.json, noCache });

      state.docker = await dockerBuild(a, spec(tagOf(c, 'docker')));
      if (c.json.run) {
        const r = await a.docker(['run', '--rm', '--network', 'none', tagOf(c, 'docker'), ...c.json.run.args]);
        assert.equal(r.code, 0, `docker run of docker's image failed: ${r.stderr}`);
        assert.equal(r.stdout.trimEnd(), c.json.run.expect.trimEnd(), `case.json run.expect does not match what docker's own image prints`);
      } else {
        const r = await a.docker(['run', '--rm', '--network', 'none', tagOf(c, 'docker')]);
        st.diagnostic(`no run spec; docker's image prints (${r.code}): ${JSON.stringify(r.stdout)} ${r.stderr}`);
      }
      const config = (await readImageLayers(a.dataRoot, state.docker.id)).config;
      if (layerHistory(config).some((h) => COPY_ADD.test(h.created_by ?? ''))) {
        // A second build that starts in a later second than the first ended, so that
        // wall-clock mtimes cannot coincide by chance.
        while (Math.floor(Date.now() / 1000) <= state.docker.to) await new Promise((r) => setTimeout(r, 50));
        state.docker2 = await dockerBuild(a, spec(tagOf(c, 'docker2')));
      }

      if (DUMP) {
        const { config: dc, layers } = await readImageLayers(a.dataRoot, state.docker.id);
        const h = layerHistory(dc);
        for (const l of layers) {
          if (l.diffId === baseDiffId) continue;
          st.diagnostic(`docker layer ${l.index}: ${h[l.index]?.created_by} (build window ${state.docker.from}..${state.docker.to})`);
          for (const line of formatTree(await describeTree(l.diffDir)).split('\n')) st.diagnostic(`  ${line}`);
        }
      }
      state.ours = await ours.build(spec(state.tag));
      oursTags.set(state.tag, state.ours.id);
      const result = await compareImages(a.dataRoot, state.docker, oursRoot, state.ours, state.docker2);
      for (const l of result.layers.filter((x) => x.copyAdd)) {
        reproducibility.push(`${c.name} layer ${l.index} ${l.dockerReproducible ? 'REPRODUCIBLE' : 'varies      '} ${l.diffIdEqual ? '=' : '≠'} ${l.createdBy.replace(/^\/bin\/sh -c #\(nop\) /, '')}`);
      }
      st.diagnostic(`layers: ${result.layers.length}; COPY/ADD reproducible by docker: ${result.layers.filter((l) => l.dockerReproducible).length}/${result.layers.filter((l) => l.copyAdd).length}`);
      if (result.problems.length) assert.fail(`${c.name}: docker and ${ours.label} differ:\n  ${result.problems.join('\n  ')}`);
      if (RUN_AS && c.json.run) {
        // Rootless: run it as the user, before a rootful dockerd takes the root over (below).
        const r = await runAsUser(RUN_AS, ['run', '--root', oursRoot, '--network', 'none', state.tag, ...c.json.run.args]);
        assert.equal(r.code, 0, `tsbuild run ${state.tag} as ${RUN_AS.name} failed: ${r.stderr}`);
        assert.equal(r.stdout.trimEnd(), c.json.run.expect.trimEnd(), `tsbuild run ${state.tag} as ${RUN_AS.name}: output`);
      }
    });
  }
  lap(`${CASES.length} cases built and compared`, phase);
  t.diagnostic("COPY/ADD layers: docker's diffID reproducible or varying; ours = or ≠ docker's");
  for (const line of reproducibility) t.diagnostic(line);

  // ------------------------------------------------------------------ cache
  phase = Date.now();
  const cache = states.find((s) => s.c.name === CACHE_CASE);
  await t.test('cache: unchanged and touch-only rebuilds are cached; a changed COPY source rebuilds from that COPY on', { skip: cache?.ours && cache.docker ? false : `${CACHE_CASE} did not build` }, async () => {
    const s = cache!;
    const bFile = join(s.context, 'b.txt');
    // cache-chain/Dockerfile has 9 steps (FROM included); from `COPY b.txt` to the
    // end there are 5: COPY, RUN, LABEL, COPY, CMD.
    const STEPS = 9;
    const REBUILT_STEPS = 5;
    const dockerKnown = new Set([s.docker!.id, s.docker2?.id]);
    const rebuild = async (label: string): Promise<{ docker: Built; ours: Built; newDocker: number; newOurs: number }> => {
      const beforeD = new Set(await listImageIds(a.dataRoot));
      const beforeO = new Set(await listImageIds(oursRoot));
      const docker = await dockerBuild(a, { context: s.context, tag: tagOf(s.c, `docker-${label}`), json: s.c.json, noCache: false });
      const o = await ours.build({ context: s.context, tag: tagOf(s.c, `ours-${label}`), json: s.c.json, noCache: false });
      oursTags.set(tagOf(s.c, `ours-${label}`), o.id);
      const newDocker = (await listImageIds(a.dataRoot)).filter((id) => !beforeD.has(id)).length;
      const newOurs = (await listImageIds(oursRoot)).filter((id) => !beforeO.has(id)).length;
      return { docker, ours: o, newDocker, newOurs };
    };

    const same = await rebuild('again');
    assert.ok(dockerKnown.has(same.docker.id), 'docker: an unchanged rebuild reuses an existing image');
    assert.equal(same.newDocker, 0, 'docker: an unchanged rebuild adds no image');
    assert.equal(same.ours.id, s.ours!.id, 'ours: an unchanged rebuild gives the same image ID');
    assert.equal(same.newOurs, 0, 'ours: an unchanged rebuild adds no image to imagedb');
    assert.equal(same.docker.cached, STEPS - 1, 'docker: every step after FROM reports "Using cache"');
    assert.equal(same.ours.cached, same.docker.cached, 'ours reports as many cached steps as docker');

    // The classic builder's COPY cache key is the content hash, which leaves out mtimes.
    const later = new Date((CONTEXT_MTIME + 100) * 1000);
    lutimesSync(bFile, later, later);
    const touched = await rebuild('touched');
    assert.equal(touched.newDocker, 0, 'docker: touching a COPY source keeps the cache');
    assert.equal(touched.ours.id, s.ours!.id, 'ours: touching a COPY source keeps the cache (same image ID)');
    assert.equal(touched.newOurs, 0, 'ours: touching a COPY source adds no image');
    assert.equal(touched.ours.cached, touched.docker.cached, 'ours reports as many cached steps as docker');

    writeFileSync(bFile, 'b, changed\n');
    lutimesSync(bFile, later, later);
    const changed = await rebuild('changed');
    assert.equal(changed.newDocker, REBUILT_STEPS, 'docker: steps from the changed COPY on are rebuilt');
    assert.equal(changed.newOurs, REBUILT_STEPS, 'ours: exactly the steps from the changed COPY on are rebuilt');
    assert.notEqual(changed.ours.id, s.ours!.id);
    assert.equal(changed.docker.cached, STEPS - 1 - REBUILT_STEPS, 'docker: the steps before the changed COPY use the cache');
    assert.equal(changed.ours.cached, changed.docker.cached, 'ours reports as many cached steps as docker');
    const cmp = await compareImages(a.dataRoot, changed.docker, oursRoot, changed.ours);
    if (cmp.problems.length) assert.fail(`rebuilt image differs:\n  ${cmp.problems.join('\n  ')}`);
    // The steps before the changed COPY are shared with the first build.
    const firstChain = await parentChain(oursRoot, s.ours!.id);
    const newChain = await parentChain(oursRoot, changed.ours.id);
    const shared = newChain.filter((id) => firstChain.includes(id)).length;
    assert.equal(shared, newChain.length - REBUILT_STEPS, 'ours: the new image chain reuses every step image before the changed COPY');
  });
  lap('cache test', phase);

  // ------------------------------------------------------------------ dockerd on ours' root
  phase = Date.now();
  await a.stop();
  await ours.release();
  const built = states.filter((s) => s.ours);
  await t.test(`dockerd on ${ours.label}'s root: lists, runs and saves every image`, async (st) => {
    const b = await startDockerd({ dataRoot: oursRoot });
    daemons.push(b);
    const all = (await mustDocker(b, ['images', '-a', '-q', '--no-trunc'])).split('\n').filter(Boolean);
    assert.deepEqual([...new Set(all)].sort(), await listImageIds(oursRoot), 'dockerd loads every image in imagedb');
    const listed = new Map<string, string>();
    for (const line of (await mustDocker(b, ['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).split('\n')) {
      const [ref, id] = line.split(' ');
      if (ref && id) listed.set(ref, id);
    }
    for (const [tag, id] of oursTags) assert.equal(listed.get(tag), id, `docker images lists ${tag}`);
    assert.ok(listed.has('busybox:latest'), 'docker images lists busybox:latest');

    const saves = join(work, 'save');
    for (const s of built) {
      await st.test(s.c.name, async () => {
        if (s.c.json.run && !RUN_AS) {
          const r = await b.docker(['run', '--rm', '--network', 'none', s.tag, ...s.c.json.run.args]);
          assert.equal(r.code, 0, `docker run ${s.tag} failed: ${r.stderr}`);
          assert.equal(r.stdout.trimEnd(), s.c.json.run.expect.trimEnd(), `docker run ${s.tag} output`);
        } else {
          const r = await b.docker(['create', s.tag]);
          assert.equal(r.code, 0, `docker create ${s.tag} failed: ${r.stderr}`);
          await b.docker(['rm', r.stdout.trim()]);
        }
        const dir = join(saves, s.c.name);
        mkdirSync(dir, { recursive: true });
        try {
          const tarPath = join(saves, `${s.c.name}.tar`);
          await mustDocker(b, ['save', '-o', tarPath, s.tag]);
          execFileSync('tar', ['-xf', tarPath, '-C', dir]);
          rmSync(tarPath);
          const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { Config: string; RepoTags: string[] | null; Layers: string[] }[];
          assert.equal(manifest.length, 1);
          const m = manifest[0]!;
          assert.deepEqual(m.RepoTags, [s.tag]);
          const configBytes = readFileSync(join(dir, m.Config));
          assert.ok(configBytes.equals(await readImageConfigBytes(oursRoot, s.ours!.id)), 'saved config = imagedb bytes');
          const config = JSON.parse(configBytes.toString('utf8')) as ImageConfigJson;
          assert.deepEqual(
            m.Layers.map((l) => sha256File(join(dir, l))),
            config.rootfs?.diff_ids ?? [],
            'every saved layer.tar hashes to its diffID (tar-split reassembles)',
          );
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
    await b.stop();
  });
  lap('dockerd on ours root: list, run, save', phase);
  timings.push(`total: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.diagnostic(`timings (${MODE} mode): ${timings.join('; ')}`);
});

/** An image and its ancestors (metadata parent links), newest first. */
async function parentChain(root: string, id: string): Promise<string[]> {
  const out: string[] = [];
  for (let cur: string | undefined = id; cur; cur = await readImageParent(root, cur)) out.push(cur);
  return out;
}
