// Helpers for the analyze tests: a store with busybox:local, builds, the CLI in-process,
// an independent efficiency computation, a small PNG decoder.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { inflateSync } from 'node:zlib';
import { main } from '../../src/cli/main.js';
import { runBuild } from '../../src/exec/run-build.js';
import { importRootfs } from '../../src/store/import.js';
import { exampleBusyboxTar as busyboxTar } from '../support/build-fixture.js';
import { ImageStore } from '../../src/store/store.js';

export const skipBuilds = process.getuid?.() !== 0 ? 'needs root (overlay mounts, namespaces)' : !existsSync('/bin/busybox') ? 'needs busybox-static (/bin/busybox)' : undefined;

export const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;


export interface Fixture {
  dir: string;
  root: string;
  store: ImageStore;
}

/** A fresh store with busybox:local; removed after the test (or suite). */
export async function storeWithBusybox(t: { after(fn: () => void): void }): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-analyze-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  const store = await ImageStore.open(root);
  await importRootfs(store, Readable.from([busyboxTar()]), { reference: 'busybox:local', platform: { os: 'linux', architecture: 'amd64' } });
  return { dir, root, store };
}

/** Builds `dockerfile` (text) with `files` in its context as `tag`; returns the Dockerfile's path. */
export async function buildText(f: Fixture, tag: string, dockerfile: string, files: Record<string, string | Buffer> = {}): Promise<string> {
  const ctx = join(f.dir, `ctx-${tag.replace(/[^a-z0-9]/g, '_')}`);
  mkdirSync(ctx, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(ctx, name), content);
  writeFileSync(join(ctx, 'Dockerfile'), dockerfile);
  await runBuild({ root: f.root, contextDir: ctx, tags: [tag] });
  return join(ctx, 'Dockerfile');
}

/** Runs the CLI in-process; returns its exit code and what it printed. */
export async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['node', 'tsbuild', ...args]);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = undefined;
  }
  return { code, stdout, stderr };
}

/**
 * dive's efficiency and wasted bytes computed another way: from the overlay2 diff
 * dirs (not the tar-split), with flat maps (not trees). A leaf is a file, link,
 * whiteout (0/0 char device) or empty dir of the layer; a whiteout of a path that
 * was a dir below weighs what was under it; opaque dirs are ignored, as dive does.
 */
export function independentDive(diffDirs: string[]): { efficiency: number; wastedBytes: number } {
  const sightings = new Map<string, number[]>();
  const visible = new Map<string, { dir: boolean; size: number }>();
  for (const diff of diffDirs) {
    const layer: { path: string; dir: boolean; size: number; whiteout: boolean; leaf: boolean }[] = [];
    const seen = new Set<string>();
    const walk = (abs: string, rel: string): void => {
      for (const name of readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare).map((b) => b.toString())) {
        const st = lstatSync(join(abs, name));
        const p = `${rel}/${name}`;
        const whiteout = st.isCharacterDevice() && st.rdev === 0;
        let size = 0;
        if (st.isFile()) {
          const key = `${st.dev}:${st.ino}`;
          if (!seen.has(key)) size = st.size;
          seen.add(key);
        }
        const leaf = !st.isDirectory() || readdirSync(join(abs, name)).length === 0;
        layer.push({ path: p, dir: st.isDirectory(), size, whiteout, leaf });
        if (st.isDirectory()) walk(join(abs, name), p);
      }
    };
    walk(diff, '');
    for (const e of layer) {
      if (!e.leaf) continue;
      let size = e.size;
      if (e.whiteout) {
        const below = visible.get(e.path);
        size = 0;
        if (below?.dir) for (const [p, v] of visible) if (p.startsWith(`${e.path}/`)) size += v.size;
      }
      sightings.set(e.path, [...(sightings.get(e.path) ?? []), size]);
    }
    for (const e of layer) {
      if (e.whiteout) {
        visible.delete(e.path);
        for (const p of [...visible.keys()]) if (p.startsWith(`${e.path}/`)) visible.delete(p);
      } else visible.set(e.path, { dir: e.dir, size: e.size });
    }
  }
  let min = 0;
  let sum = 0;
  let wasted = 0;
  for (const sizes of sightings.values()) {
    const total = sizes.reduce((a, b) => a + b, 0);
    min += Math.min(...sizes);
    sum += total;
    if (sizes.length > 1) wasted += total;
  }
  return { efficiency: sum === 0 ? 1 : min / sum, wastedBytes: wasted };
}

/** Decodes an 8-bit RGB/RGBA non-interlaced PNG (what Chromium's --screenshot writes). */
export function decodePng(png: Buffer): { width: number; height: number; channels: number; pixels: Buffer } {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8]!;
      const color = data[9]!;
      if (depth !== 8 || data[12] !== 0) throw new Error(`unsupported PNG: depth ${depth}, interlace ${data[12]}`);
      channels = color === 6 ? 4 : color === 2 ? 3 : color === 0 ? 1 : color === 4 ? 2 : 0;
      if (channels === 0) throw new Error(`unsupported PNG color type ${color}`);
    } else if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels]! : 0;
      let v = line[x]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[y * stride + x] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}
