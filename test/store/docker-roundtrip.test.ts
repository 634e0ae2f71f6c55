/**
 * The store against a real dockerd 20.10 (Debian's docker.io; CI installs it):
 *  1. docker save (from dockerd A) → tsbuild load → dockerd B on the tsbuild root:
 *     same IDs and tags, `docker run` works, `docker save` works and its layers
 *     hash to their diffIDs (so every tar-split we wrote reassembles exactly);
 *  2. tsbuild save (legacy and OCI) → docker load into a fresh dockerd → docker run;
 *  3. docker history and tsbuild history agree on the same store.
 * Each daemon has its own data root, exec root, pidfile and socket, and is stopped by pid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore } from '../../src/store/store.js';
import { loadImages } from '../../src/store/docker-load.js';
import { saveImages } from '../../src/store/docker-save.js';
import { imageHistory } from '../../src/cli/commands/history.js';
import { dockerUnavailableReason, importBusyboxBase, startDockerd, type Dockerd } from '../support/dockerd.js';

const skip = dockerUnavailableReason();

/** A Dockerfile whose layers hold what layer tars must carry: deletions, opaque dirs, hardlinks, symlinks, modes. */
const DOCKERFILE = `FROM busybox:latest
RUN mkdir -p /data/sub && echo one > /data/sub/a && echo two > /data/b && ln /data/b /data/b-hard && ln -s /data/b /data/b-sym && chmod 4755 /data/b && mkfifo /data/fifo
RUN rm /data/b-sym && rm -rf /data/sub && mkdir /data/sub && echo three > /data/sub/c
LABEL org.example=roundtrip
CMD ["cat", "/data/sub/c"]
`;

function sha256File(path: string): string {
  return 'sha256:' + createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function must(d: Dockerd, args: string[], opts?: Parameters<Dockerd['docker']>[1]): Promise<string> {
  const r = await d.docker(args, opts);
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** docker save's layers must hash to the image's diffIDs. */
function checkSavedLayers(dir: string): void {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { Config: string; Layers: string[] }[];
  for (const item of manifest) {
    const config = JSON.parse(readFileSync(join(dir, item.Config), 'utf8')) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(item.Layers.map((l) => sha256File(join(dir, l))), config.rootfs.diff_ids);
  }
}

async function untar(tarPath: string, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const { execFileSync } = await import('node:child_process');
  execFileSync('tar', ['-xf', tarPath, '-C', dir]);
}

test('store round trips with a real dockerd', { skip, timeout: 600_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'tsbuild-rt-'));
  const daemons: Dockerd[] = [];
  t.after(async () => {
    for (const d of daemons) await d.stop();
    rmSync(work, { recursive: true, force: true });
  });

  // dockerd A: a base image and a classic-builder image with interesting layers.
  const a = await startDockerd();
  daemons.push(a);
  await importBusyboxBase(a, ['busybox:latest']);
  const ctx = join(work, 'ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE);
  await must(a, ['build', '-t', 'roundtrip:v1', ctx], { env: { DOCKER_BUILDKIT: '0' } });
  const fromDocker = join(work, 'from-docker.tar');
  await must(a, ['save', '-o', fromDocker, 'roundtrip:v1', 'busybox:latest']);
  const dockerIds = new Map<string, string>();
  for (const ref of ['roundtrip:v1', 'busybox:latest']) dockerIds.set(ref, (await must(a, ['image', 'inspect', '-f', '{{.Id}}', ref])).trim());
  await a.stop();

  // tsbuild load into a fresh root.
  const root = join(work, 'tsbuild-root');
  const store = await ImageStore.open(root);
  const loaded = await loadImages(store, createReadStream(fromDocker));
  assert.deepEqual(loaded.map((l) => l.refs).flat().sort(), ['busybox:latest', 'roundtrip:v1']);
  for (const [ref, id] of dockerIds) assert.equal((await store.resolve(ref))?.id, id, ref);
  const ourHistory = await imageHistory(store, 'roundtrip:v1');

  await t.test('tsbuild save (legacy) → docker load → docker run', async () => {
    const d = await startDockerd();
    daemons.push(d);
    const out = join(work, 'ours.tar');
    await saveImages(store, ['roundtrip:v1'], createWriteStream(out));
    await must(d, ['load', '-i', out]);
    assert.equal((await must(d, ['image', 'inspect', '-f', '{{.Id}}', 'roundtrip:v1'])).trim(), dockerIds.get('roundtrip:v1'));
    assert.equal((await must(d, ['run', '--rm', '--network', 'none', 'roundtrip:v1'])).trim(), 'three');
    await d.stop();
  });

  await t.test('tsbuild save --format oci → docker load → docker run', async () => {
    const d = await startDockerd();
    daemons.push(d);
    const out = join(work, 'ours-oci.tar');
    await saveImages(store, ['roundtrip:v1'], createWriteStream(out), 'oci');
    await must(d, ['load', '-i', out]);
    assert.equal((await must(d, ['run', '--rm', '--network', 'none', 'roundtrip:v1'])).trim(), 'three');
    await d.stop();
  });

  await t.test('dockerd adopts the tsbuild root: images, run, history, save', async () => {
    const b = await startDockerd({ dataRoot: root });
    daemons.push(b);
    const listed = (await must(b, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).trim().split('\n').sort();
    assert.deepEqual(listed, [...dockerIds].map(([ref, id]) => `${ref} ${id.slice(7, 19)}`).sort());
    assert.equal((await must(b, ['run', '--rm', '--network', 'none', 'roundtrip:v1'])).trim(), 'three');
    assert.equal((await must(b, ['run', '--rm', '--network', 'none', 'roundtrip:v1', 'sh', '-c', 'ls /data; cat /data/b-hard'])).trim(), 'b\nb-hard\nfifo\nsub\ntwo');

    const theirs = (await must(b, ['history', '--no-trunc', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}', 'roundtrip:v1'])).trim().split('\n');
    const ours = ourHistory.map((r) => `${r.id}|${r.createdBy}|${humanSizeOf(r.size)}|${r.comment}`);
    assert.deepEqual(ours, theirs);

    const saved = join(work, 'from-b.tar');
    await must(b, ['save', '-o', saved, 'roundtrip:v1']);
    const dir = join(work, 'from-b');
    await untar(saved, dir);
    checkSavedLayers(dir);
    await b.stop();
    assert.ok(readdirSync(join(root, 'image/overlay2/imagedb/content/sha256')).length >= 2);
  });
});

import { humanSize as humanSizeOf } from '../../src/cli/dockerfmt.js';
