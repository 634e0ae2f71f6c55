/**
 * `tsbuild verify-reproducible`: the same build twice, each in a fresh store
 * root seeded with the same base images, then the first difference when the
 * image IDs differ (a config field, or a layer path and what differs about it).
 */
import { createHash } from 'node:crypto';
import { readdir, lstat, readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { chainIds, type ImageId } from '../image/digest.js';
import { planBuild } from '../plan/planner.js';
import { loadImages } from '../store/docker-load.js';
import { saveImages } from '../store/docker-save.js';
import { ImageStore } from '../store/store.js';
import { runBuild, type RunBuildOptions } from './run-build.js';

export interface VerifyResult {
  ids: [ImageId, ImageId];
  identical: boolean;
  difference?: string;
}

async function describeTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      const abs = join(dir, path);
      const st = await lstat(abs);
      let content = '';
      if (st.isFile()) content = createHash('sha256').update(await readFile(abs)).digest('hex').slice(0, 16);
      else if (st.isSymbolicLink()) content = `-> ${await readlink(abs)}`;
      out.set(path, `mode=${st.mode.toString(8)} uid=${st.uid} gid=${st.gid} size=${st.isDirectory() ? '-' : st.size} mtime=${Math.floor(st.mtimeMs / 1000)} ${content}`);
      if (e.isDirectory()) await walk(path);
    }
  };
  await walk('');
  return out;
}

function firstConfigDifference(a: unknown, b: unknown, path = 'config'): string | undefined {
  if (JSON.stringify(a) === JSON.stringify(b)) return undefined;
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const d = firstConfigDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
      if (d) return d;
    }
  }
  return `${path}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`;
}

async function explainDifference(storeA: ImageStore, storeB: ImageStore, a: ImageId, b: ImageId): Promise<string> {
  const [ia, ib] = [await storeA.images.require(a), await storeB.images.require(b)];
  const da = ia.config.rootfs.diff_ids;
  const db = ib.config.rootfs.diff_ids;
  for (let i = 0; i < Math.max(da.length, db.length); i++) {
    if (da[i] === db[i]) continue;
    if (da[i] === undefined || db[i] === undefined) return `layer count differs: ${da.length} ≠ ${db.length}`;
    const la = (await storeA.layers.get(chainIds(da.slice(0, i + 1)).pop()!))!;
    const lb = (await storeB.layers.get(chainIds(db.slice(0, i + 1)).pop()!))!;
    const ta = await describeTree(join(storeA.overlay.dirOf(la.cacheId), 'diff'));
    const tb = await describeTree(join(storeB.overlay.dirOf(lb.cacheId), 'diff'));
    for (const path of [...new Set([...ta.keys(), ...tb.keys()])].sort()) {
      if (ta.get(path) !== tb.get(path)) return `layer ${i + 1} (${da[i]} ≠ ${db[i]}): /${path}: ${ta.get(path) ?? 'absent'} ≠ ${tb.get(path) ?? 'absent'}`;
    }
    return `layer ${i + 1} differs (${da[i]} ≠ ${db[i]}) though its files look the same: check owner names and xattrs`;
  }
  const { rootfs: _ra, ...ca } = ia.config;
  const { rootfs: _rb, ...cb } = ib.config;
  return firstConfigDifference(ca, cb) ?? 'the configs differ in their bytes only';
}

/** Copies the stage base images the Dockerfile names from `from` into `to`. */
async function seedBases(from: ImageStore, to: ImageStore, refs: string[]): Promise<void> {
  if (refs.length === 0) return;
  const pipe = new PassThrough();
  const loading = loadImages(to, pipe);
  await saveImages(from, refs, pipe);
  await loading;
}

export async function verifyReproducible(opts: RunBuildOptions & { dockerfileText: string }): Promise<VerifyResult> {
  const source = await ImageStore.open(opts.root);
  const plan = planBuild(opts.dockerfileText, { buildArgs: opts.buildArgs ?? {}, ...(opts.target !== undefined ? { target: opts.target } : {}) });
  const bases = [...new Set(plan.buildOrder.map((i) => plan.stages[i]!.base).flatMap((b) => (b.kind === 'image' ? [b.ref] : [])))];
  const scratch = await source.processScratchDir();
  try {
    const results: { id: ImageId; store: ImageStore }[] = [];
    for (const side of ['a', 'b']) {
      const root = join(scratch, side);
      const store = await ImageStore.open(root);
      await seedBases(source, store, bases);
      const { id } = await runBuild({ ...opts, root, tags: [], noCache: true, ...(opts.sourceDateEpoch === undefined ? { reproducible: true } : {}) });
      results.push({ id, store });
    }
    const [a, b] = results as [{ id: ImageId; store: ImageStore }, { id: ImageId; store: ImageStore }];
    if (a.id === b.id) return { ids: [a.id, b.id], identical: true };
    return { ids: [a.id, b.id], identical: false, difference: await explainDifference(a.store, b.store, a.id, b.id) };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
