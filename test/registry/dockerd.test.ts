/**
 * The registry client against a real dockerd 20.10 and Debian's docker-registry, both
 * private and started (and stopped by pid) here:
 *  1. tsbuild push (schema2 and OCI) → `docker pull` → `docker run`; dockerd's
 *     RepoDigests name our manifest digest;
 *  2. the same image pulled by tsbuild writes the same distribution/ files and
 *     repositories.json entries as dockerd's pull;
 *  3. an image built and pushed by dockerd is pulled by tsbuild (same image ID) and
 *     used as FROM by a tsbuild build;
 *  4. a dockerd on the tsbuild store runs that build's result and, pushing the
 *     pulled image again, finds every layer already in the registry — it read the
 *     distribution/ metadata tsbuild wrote.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore } from '../../src/store/store.js';
import { pull, pushImage } from '../../src/registry/index.js';
import { runBuild } from '../../src/exec/run-build.js';
import { dockerUnavailableReason, importBusyboxBase, startDockerd, type Dockerd } from '../support/dockerd.js';
import { makeTestImage, registryUnavailableReason, startRegistry } from '../support/registry.js';

const skip = registryUnavailableReason() ?? dockerUnavailableReason() ?? (existsSync('/bin/busybox') ? undefined : 'needs busybox-static');

async function must(d: Dockerd, args: string[], opts?: Parameters<Dockerd['docker']>[1]): Promise<string> {
  const r = await d.docker(args, opts);
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function repoDigests(d: Dockerd, ref: string): Promise<string[]> {
  return JSON.parse(await must(d, ['image', 'inspect', '-f', '{{json .RepoDigests}}', ref])) as string[];
}

/** relative path → [mode, content] of every file under a distribution/ dir. */
function distributionFiles(dir: string): Map<string, [number, string]> {
  const out = new Map<string, [number, string]>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const p = join(dir, rel, name);
      const st = statSync(p);
      const key = rel ? `${rel}/${name}` : name;
      if (st.isDirectory()) {
        out.set(`${key}/`, [st.mode & 0o777, '']);
        walk(key);
      } else out.set(key, [st.mode & 0o777, readFileSync(p, 'utf8')]);
    }
  };
  walk('');
  return out;
}

test('tsbuild and dockerd through a registry: push → docker pull/run, docker push → tsbuild pull → FROM, shared distribution metadata', { skip, timeout: 600_000 }, async (t) => {
  const reg = await startRegistry();
  const work = mkdtempSync(join(tmpdir(), 'tsb-regd-'));
  const daemons: Dockerd[] = [];
  t.after(async () => {
    for (const d of daemons) await d.stop();
    await reg.stop();
    rmSync(work, { recursive: true, force: true });
  });

  // 1. tsbuild push → docker pull → docker run.
  const a = await ImageStore.open(join(work, 'a'));
  const app = `${reg.host}/e2e/app:v1`;
  const appOci = `${reg.host}/e2e/app:oci`;
  const id = await makeTestImage(a, app);
  await a.tag(appOci, id);
  const pushed = await pushImage(a, app);
  const pushedOci = await pushImage(a, appOci, { oci: true });

  const d1 = await startDockerd();
  daemons.push(d1);
  await must(d1, ['pull', app]);
  assert.equal((await must(d1, ['run', '--rm', '--network', 'none', app])).toString(), 'hello from tsbuild\n');
  assert.equal((await must(d1, ['image', 'inspect', '-f', '{{.Id}}', app])).trim(), id);
  assert.ok((await repoDigests(d1, app)).includes(`${reg.host}/e2e/app@${pushed.digest}`));
  await must(d1, ['pull', appOci]);
  assert.equal((await must(d1, ['run', '--rm', '--network', 'none', appOci, 'sh', '-c', 'ls /data; cat /data/b'])).trim().split('\n')[0], 'b', 'the whiteout removed /data/a');
  assert.ok((await repoDigests(d1, appOci)).includes(`${reg.host}/e2e/app@${pushedOci.digest}`));

  // 2. tsbuild pulls the same image into a fresh store: the same distribution/ files and references as dockerd's.
  const b = await ImageStore.open(join(work, 'b'));
  await pull(b, app);
  const ours = distributionFiles(join(b.layout.imageRoot, 'distribution'));
  const theirs = distributionFiles(join(d1.dataRoot, 'image', 'overlay2', 'distribution'));
  for (const [path, value] of ours) assert.deepEqual(theirs.get(path), value, `distribution/${path}`);
  assert.equal(statSync(join(b.layout.imageRoot, 'distribution')).mode & 0o777, statSync(join(d1.dataRoot, 'image', 'overlay2', 'distribution')).mode & 0o777);
  const dockerRepos = JSON.parse(readFileSync(join(d1.dataRoot, 'image', 'overlay2', 'repositories.json'), 'utf8')).Repositories;
  const ourRepos = JSON.parse(readFileSync(b.layout.repositoriesJson, 'utf8')).Repositories;
  assert.deepEqual(ourRepos[`${reg.host}/e2e/app`], { [app]: id, [`${reg.host}/e2e/app@${pushed.digest}`]: id });
  for (const [k, v] of Object.entries(ourRepos[`${reg.host}/e2e/app`] as object)) assert.equal(dockerRepos[`${reg.host}/e2e/app`][k], v, k);

  // 3. dockerd builds and pushes; tsbuild pulls it and builds FROM it.
  await importBusyboxBase(d1, ['busybox:latest']);
  const ctx = join(work, 'docker-ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox:latest\nRUN echo built-by-docker > /docker.txt\nCMD ["cat", "/docker.txt"]\n');
  const fromDocker = `${reg.host}/e2e/docker:v1`;
  await must(d1, ['build', '-t', fromDocker, ctx], { env: { DOCKER_BUILDKIT: '0' } });
  const fromDockerId = (await must(d1, ['image', 'inspect', '-f', '{{.Id}}', fromDocker])).trim();
  await must(d1, ['push', fromDocker]);
  const dockerDigests = await repoDigests(d1, fromDocker);
  await d1.stop();

  const r = await pull(b, fromDocker);
  assert.equal(r.image.id, fromDockerId);
  assert.deepEqual(dockerDigests, [`${reg.host}/e2e/docker@${r.digest}`]);
  const buildCtx = join(work, 'build-ctx');
  mkdirSync(buildCtx);
  writeFileSync(join(buildCtx, 'Dockerfile'), `FROM ${fromDocker}\nRUN cat /docker.txt > /copy.txt && echo and-tsbuild >> /copy.txt\nCMD ["cat", "/copy.txt"]\n`);
  const built = await runBuild({ root: b.root, contextDir: buildCtx, tags: ['derived:latest'] });
  const derived = await b.require('derived:latest');
  assert.equal(derived.id, built.id);
  assert.deepEqual(derived.config.rootfs.diff_ids.slice(0, r.image.config.rootfs.diff_ids.length), r.image.config.rootfs.diff_ids);

  // 4. dockerd on the tsbuild store: runs the build, and pushes the pulled image without uploading a layer.
  const d2 = await startDockerd({ dataRoot: b.root });
  daemons.push(d2);
  assert.equal(await must(d2, ['run', '--rm', '--network', 'none', 'derived:latest']), 'built-by-docker\nand-tsbuild\n');
  assert.deepEqual(await repoDigests(d2, fromDocker), [`${reg.host}/e2e/docker@${r.digest}`]);
  const again = await must(d2, ['push', fromDocker]);
  const ids = new Set(again.split('\n').filter((l) => /^[0-9a-f]{12}: /.test(l)).map((l) => l.slice(0, 12)));
  assert.equal(ids.size, r.image.config.rootfs.diff_ids.length, again);
  for (const layer of ids) assert.ok(again.includes(`${layer}: Layer already exists\n`), again);
  assert.doesNotMatch(again, /Pushed|Mounted/);
  assert.match(again, new RegExp(`v1: digest: ${r.digest} size: \\d+`));
});
