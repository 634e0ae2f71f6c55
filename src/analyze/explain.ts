/**
 * `tsbuild explain IMAGE`: the seeds' lesson told with the image's own values —
 * the image ID is the sha256 of the config bytes; diffIDs name layer contents;
 * chainIDs chain them; layerdb and overlay2 hold them; classic-builder step
 * images link by metadata parents; metadata-only steps are empty_layer entries.
 * Every claim that can be checked comes with a shell command that checks it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hexOf } from '../image/digest.js';
import type { StoredImage } from '../store/imagedb.js';
import type { ImageStore } from '../store/store.js';
import { imageSteps, type Step } from './steps.js';

export interface ExplainCheck {
  what: 'imageId' | 'chainId' | 'diffId';
  layer: number | null;
  /** A shell command; its output's first field must be `expected`. */
  command: string;
  expected: string;
}

export interface ExplainJson {
  schema: 'tsbuild.explain/v1';
  image: { id: string; refs: string[]; configPath: string; configBytes: number };
  layers: {
    index: number;
    diffId: string;
    chainId: string;
    parentChainId: string | null;
    layerdbDir: string;
    cacheId: string;
    diffDir: string;
    linkId: string | null;
    lower: string | null;
    size: number;
    step: number | null;
  }[];
  parents: { id: string; refs: string[]; historyLength: number; createdBy: string }[];
  history: { index: number; instruction: string; createdBy: string; emptyLayer: boolean; layer: number | null; why: string }[];
  checks: ExplainCheck[];
}

/** Single-quotes a word for sh. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const METADATA = new Set(['ENV', 'LABEL', 'CMD', 'ENTRYPOINT', 'EXPOSE', 'USER', 'VOLUME', 'STOPSIGNAL', 'ARG', 'SHELL', 'HEALTHCHECK', 'MAINTAINER', 'ONBUILD']);

export function emptyLayerWhy(s: Step): string {
  if (!s.emptyLayer) return s.layer === null ? '' : `made layer ${s.layer}`;
  if (METADATA.has(s.instruction)) return `empty_layer: ${s.instruction} only edits the config; the filesystem is unchanged, so no layer`;
  if (s.instruction === 'RUN') return 'empty_layer: the command changed no file, and an empty diff makes no layer';
  if (s.instruction === 'WORKDIR') return 'empty_layer: the directory already existed';
  return 'empty_layer: no filesystem change';
}

async function readOpt(p: string): Promise<string | null> {
  try {
    return await readFile(p, 'utf8');
  } catch {
    return null;
  }
}

export async function explainImage(store: ImageStore, ref: string): Promise<ExplainJson> {
  const image = await store.require(ref);
  const steps = await imageSteps(store, image);
  const configPath = join(store.layout.contentDir, hexOf(image.id));
  const chain = await store.layerChain(image);
  const checks: ExplainCheck[] = [{ what: 'imageId', layer: null, command: `sha256sum ${shq(configPath)}`, expected: hexOf(image.id) }];
  const layers: ExplainJson['layers'] = [];
  for (const [i, l] of chain.entries()) {
    const layerdbDir = store.layers.dirOf(l.chainId);
    const dir = store.overlay.dirOf(l.cacheId);
    const parent = i === 0 ? null : chain[i - 1]!.chainId;
    layers.push({
      index: i,
      diffId: l.diffId,
      chainId: l.chainId,
      parentChainId: parent,
      layerdbDir,
      cacheId: l.cacheId,
      diffDir: join(dir, 'diff'),
      linkId: (await readOpt(join(dir, 'link')))?.trim() ?? null,
      lower: await readOpt(join(dir, 'lower')),
      size: l.size,
      step: steps.find((s) => s.layer === i)?.index ?? null,
    });
    if (parent === null) checks.push({ what: 'chainId', layer: i, command: `cat ${shq(join(layerdbDir, 'diff'))} | cut -d: -f2`, expected: hexOf(l.chainId) });
    else checks.push({ what: 'chainId', layer: i, command: `printf '%s' '${parent} ${l.diffId}' | sha256sum`, expected: hexOf(l.chainId) });
    checks.push({ what: 'diffId', layer: i, command: `tar-split asm --input ${shq(store.layers.tarSplitPath(l.chainId))} --path ${shq(join(dir, 'diff'))} 2>/dev/null | sha256sum`, expected: hexOf(l.diffId) });
  }
  const parents: ExplainJson['parents'] = [];
  for (let cur: StoredImage | undefined = image; cur; cur = cur.parent ? await store.images.get(cur.parent) : undefined) {
    const h = cur.config.history ?? [];
    parents.push({ id: cur.id, refs: await store.referencesOf(cur.id), historyLength: h.length, createdBy: h[h.length - 1]?.created_by ?? '' });
  }
  return {
    schema: 'tsbuild.explain/v1',
    image: { id: image.id, refs: await store.referencesOf(image.id), configPath, configBytes: image.bytes.length },
    layers,
    parents,
    history: steps.map((s) => ({ index: s.index, instruction: s.instruction, createdBy: s.createdBy, emptyLayer: s.emptyLayer, layer: s.layer, why: emptyLayerWhy(s) })),
    checks,
  };
}

const short = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);

function oneLine(s: string, max = 70): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
}

/** The lesson as text; every `$ ` line is a command whose output's first field is on the next line. */
export async function formatExplain(e: ExplainJson): Promise<string> {
  const o: string[] = [];
  const cmd = (c: ExplainCheck | undefined) => {
    if (c) o.push(`     $ ${c.command}`, `     ${c.expected}`);
  };
  const name = e.image.refs[0] ?? short(e.image.id);
  o.push(`${name}: ${e.layers.length} layers, ${e.history.length} history entries`, '');
  o.push('1. The image ID is the sha256 of the config JSON, byte for byte.');
  o.push(`   ID:     ${e.image.id}`);
  o.push(`   config: ${e.image.configPath} (${e.image.configBytes} bytes, no trailing newline)`);
  o.push('   Change one byte of the config (a label, a date) and the ID changes. Check:');
  cmd(e.checks.find((c) => c.what === 'imageId'));
  o.push('');
  o.push('2. The config lists its layers by DiffID (rootfs.diff_ids): the sha256 of each uncompressed layer tar.');
  for (const l of e.layers) o.push(`   DiffID(${l.index}) = ${l.diffId}`);
  o.push('');
  o.push('3. A layer is stored under its ChainID, which covers it and every layer below it:');
  o.push('   ChainID(0) = DiffID(0);  ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n))  (full "sha256:" strings).');
  o.push('   The same tar on another base gets another ChainID. Check each:');
  for (const l of e.layers) {
    o.push(l.parentChainId === null ? `   ChainID(0) = DiffID(0) = ${l.chainId}` : `   ChainID(${l.index}) = sha256("${short(l.parentChainId)}… ${short(l.diffId)}…") = ${l.chainId}`);
    cmd(e.checks.find((c) => c.what === 'chainId' && c.layer === l.index));
  }
  o.push('');
  o.push('4. Behind each ChainID: a layerdb dir (metadata) and an overlay2 dir (the files).');
  for (const l of e.layers) {
    o.push(`   layer ${l.index}: ${l.layerdbDir}/`);
    o.push(`     diff        ${l.diffId}`);
    o.push(`     size        ${l.size}  (bytes of the layer's own files)`);
    o.push(`     cache-id    ${l.cacheId}  (its overlay2 dir)`);
    o.push(l.parentChainId === null ? '     parent      (none: the bottom layer)' : `     parent      ${l.parentChainId}`);
    o.push('     tar-split.json.gz  (tar headers and CRCs: rebuilds the exact tar for save/push)');
    let count = '';
    try {
      count = `${(await readdir(l.diffDir)).length} top-level entries`;
    } catch {
      count = 'missing';
    }
    o.push(`   ${l.diffDir}/  (${count}; a deleted lower file is a 0/0 char device, a hidden lower dir has trusted.overlay.opaque=y)`);
    o.push(`     link ${l.linkId ?? '?'} (overlay2/l/${l.linkId ?? '?'} -> ../${l.cacheId}/diff)${l.lower ? `, lower ${oneLine(l.lower, 60)}` : ', no lower (bottom layer)'}`);
    o.push('     Re-assemble the tar and hash it to get the DiffID back:');
    cmd(e.checks.find((c) => c.what === 'diffId' && c.layer === l.index));
  }
  o.push('');
  o.push('5. The metadata parent chain: the classic builder commits an image per step, each linking to the previous one');
  o.push('   (imagedb/metadata/sha256/<id>/parent). docker history walks it; an image without a parent is the base.');
  for (const [i, p] of e.parents.entries()) {
    const tags = p.refs.length ? ` (${p.refs.join(', ')})` : '';
    o.push(`   ${'  '.repeat(Math.min(i, 8))}${i === 0 ? '' : '└ parent '}${p.id}${tags}  history ${p.historyLength}: ${oneLine(p.createdBy || '(no created_by)', 50)}`);
  }
  o.push('');
  o.push('6. History: one entry per step. Steps that change only the config are empty_layer and add no DiffID.');
  for (const h of e.history) o.push(`   #${h.index} ${(h.instruction || '-').padEnd(8)} ${h.emptyLayer ? 'empty ' : `L${h.layer}`.padEnd(6)} ${oneLine(h.createdBy || '(no created_by)', 50)}  — ${h.why}`);
  const nonEmpty = e.history.filter((h) => !h.emptyLayer).length;
  o.push(`   ${nonEmpty} non-empty entries = ${e.layers.length} diff_ids.`);
  return o.join('\n') + '\n';
}
