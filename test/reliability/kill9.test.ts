/**
 * Crash safety: 100 builds (four at a time, on one root) are killed with SIGKILL
 * at random moments; then `tsbuild fsck` (no --repair) must find nothing, no
 * process or mount of a killed build may remain, and a real dockerd opened on the
 * root must load every tagged image. KILL_RUNS / KILL_SEED override the defaults.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerUnavailableReason, startDockerd } from '../support/dockerd.js';
import { cli, cliEntry, mountsUnder, processesUsing, spawnCli, storeWithBusybox, unavailable } from './support.js';

const RUNS = Number(process.env['KILL_RUNS'] ?? 100);
const PARALLEL = 4;
let seed = Number(process.env['KILL_SEED'] ?? Date.now() % 1_000_000);
/** mulberry32: reproducible kill times for a given seed. */
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** Dockerfiles that write in every way a build can: RUN layers, COPY, WORKDIR, metadata, multi-stage. */
const DOCKERFILES = [
  'FROM bb\nRUN echo one > /one && mkdir -p /d/e && echo x > /d/e/f\nCOPY data /data\nCMD ["cat", "/one"]\n',
  'FROM bb\nWORKDIR /app\nCOPY data ./\nRUN rm -f /bin/vi && echo two > /two\nENV A=b\n',
  'FROM bb AS a\nRUN dd if=/dev/zero of=/big bs=1k count=2048 2>/dev/null\nFROM bb\nCOPY --from=a /big /big\nRUN sleep 0.2; ls -l /big > /ls\n',
  'FROM bb\nRUN for i in $(seq 1 200); do echo $i > /f$i; done\nRUN rm /f1 /f2\nLABEL k=v\n',
  'FROM bb\nRUN sleep 5\n',
  // A secret (tmpfs under /dev/shm) and a context sent on stdin (unpacked into the store's tmp).
  'FROM bb\nRUN --mount=type=secret,id=s,target=/run/s cat /run/s > /s.len && sleep 1\n',
];

test('kill -9 at random moments: fsck passes, nothing left running, dockerd loads every tag', { skip: unavailable(), timeout: 400_000 }, async (t) => {
  const startSeed = seed;
  t.diagnostic(`KILL_SEED=${startSeed} KILL_RUNS=${RUNS}`);
  cliEntry();
  const base = mkdtempSync(join(tmpdir(), 'tsb-kill-'));
  const root = join(base, 'root');
  t.after(() => rmSync(base, { recursive: true, force: true }));
  await storeWithBusybox(root);
  const contexts = DOCKERFILES.map((text, i) => {
    const dir = join(base, `ctx${i}`);
    mkdirSync(join(dir, 'data'), { recursive: true });
    writeFileSync(join(dir, 'Dockerfile'), text);
    writeFileSync(join(dir, 'data', 'file.txt'), `context ${i}\n`.repeat(100));
    return dir;
  });

  // The builds' /tmp is ours alone (TMPDIR), so every tsbuild temp dir in it can be checked.
  const tmp = join(base, 'tmp');
  mkdirSync(tmp);
  const env = { ...process.env, TMPDIR: tmp };
  writeFileSync(join(base, 'secret'), 'shh\n');
  const argsFor = (i: number, tag: string) => {
    const ctx = contexts[i % contexts.length]!;
    const secret = ctx.endsWith(`ctx${DOCKERFILES.length - 1}`);
    // Half the builds skip the cache, so they keep writing new layers.
    return ['build', '--root', root, '-t', tag, '--progress', 'plain', ...(i % 2 === 0 ? ['--no-cache'] : []), ...(secret ? ['--secret', `id=s,src=${join(base, 'secret')}`] : []), secret && i % 4 === 1 ? '-' : ctx];
  };
  const inputFor = (args: string[], ctx: string) => (args.at(-1) === '-' ? { input: execFileSync('tar', ['-cf', '-', '-C', ctx, '.']) } : {});
  // How long each kind of build takes when left alone (uncached, then cached), so the kill
  // times fall inside builds however fast this machine is.
  const duration = new Map<string, number>();
  for (let i = 0; i < contexts.length * 2; i++) {
    const ctx = contexts[i % contexts.length]!;
    const args = argsFor(i, `calibrate${i}`);
    const t0 = Date.now();
    const r = await spawnCli(args, { env, ...inputFor(args, ctx) }).done;
    assert.equal(r.code, 0, `calibration build ${i} failed: ${r.stderr.slice(-500)}`);
    duration.set(`${i % contexts.length}/${i % 2}`, Date.now() - t0);
  }
  t.diagnostic(`uninterrupted builds take ${[...duration.values()].sort((a, b) => a - b).join(', ')} ms`);
  const pids = new Set<number>();
  const started = Date.now();
  let next = 0;
  let completed = 0;
  let killed = 0;
  const failures: string[] = [];
  const worker = async () => {
    while (next < RUNS) {
      const i = next++;
      const ctx = contexts[i % contexts.length]!;
      const args = argsFor(i, `kill${i}`);
      const { child, done } = spawnCli(args, { env, ...inputFor(args, ctx) });
      if (child.pid !== undefined) pids.add(child.pid);
      // Anywhere in the build's life, start-up included (four at a time make each one slower).
      const delay = 20 + random() * 0.95 * (duration.get(`${i % contexts.length}/${i % 2}`) ?? 2500);
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      const r = await done;
      clearTimeout(timer);
      if (r.signal === 'SIGKILL') killed++;
      else if (r.code === 0) completed++;
      else failures.push(`build ${i}: exit ${r.code}: ${r.stderr.slice(-500)}`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  t.diagnostic(`${RUNS} builds in ${((Date.now() - started) / 1000).toFixed(1)} s: ${killed} killed, ${completed} completed`);
  assert.deepEqual(failures, [], 'a build that was not killed must succeed');
  assert.ok(killed >= RUNS / 2, `most builds should be killed mid-way (${killed})`);

  // fsck opens the store (the crash sweep runs first), then must find nothing.
  const shmOf = () => (existsSync('/dev/shm') ? readdirSync('/dev/shm').filter((n) => pids.has(Number(/^tsbuild-(\d+)-/.exec(n)?.[1]))) : []);
  const scratchOf = () => (existsSync(join(root, 'tsbuild-tmp')) ? readdirSync(join(root, 'tsbuild-tmp')) : []);
  t.diagnostic(`left by the killed builds: ${readdirSync(tmp).length} in TMPDIR, ${shmOf().length} in /dev/shm, ${scratchOf().length} in the store's tsbuild-tmp`);
  const fsckStarted = Date.now();
  const check = await cli(['fsck', '--root', root], { env });
  t.diagnostic(`fsck: ${((Date.now() - fsckStarted) / 1000).toFixed(1)} s: ${check.stdout.trim().split('\n').pop()}`);
  assert.equal(check.code, 0, `fsck must pass without --repair:\n${check.stdout}${check.stderr}`);
  assert.deepEqual(processesUsing(root), [], 'no process of a killed build may remain');
  assert.deepEqual(mountsUnder(root), [], 'no mount may remain');
  // …and that one tsbuild (fsck) swept every temp dir the killed builds left: their workers'
  // in TMPDIR, their secrets in /dev/shm, their scratch dirs in the store.
  assert.deepEqual(readdirSync(tmp), [], 'no tsbuild temp dir left in TMPDIR');
  assert.deepEqual(shmOf(), [], 'no secrets dir left in /dev/shm');
  assert.deepEqual(scratchOf(), [], 'no scratch dir left in the store');

  const repos = JSON.parse(readFileSync(join(root, 'image', 'overlay2', 'repositories.json'), 'utf8')) as { Repositories: Record<string, Record<string, string>> };
  const tags = Object.values(repos.Repositories).flatMap((r) => Object.entries(r));
  assert.ok(tags.length >= 2, 'some builds completed and were tagged');

  const reason = dockerUnavailableReason();
  if (reason) {
    t.diagnostic(`dockerd check skipped: ${reason}`);
    return;
  }
  const dockerStarted = Date.now();
  const d = await startDockerd({ dataRoot: root });
  try {
    const ls = await d.docker(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
    assert.equal(ls.code, 0, ls.stderr);
    const listed = new Set(ls.stdout.trim().split('\n'));
    for (const [ref, id] of tags) assert.ok(listed.has(`${ref} ${id}`), `dockerd lists ${ref} as ${id}:\n${ls.stdout}`);
    // Layer data, too: docker save reassembles every layer from tar-split and checks its diffID.
    const some = tags.slice(0, 3).map(([ref]) => ref);
    const save = await d.docker(['save', '-o', join(base, 'save.tar'), ...some]);
    assert.equal(save.code, 0, save.stderr);
  } finally {
    await d.stop();
  }
  t.diagnostic(`dockerd check: ${((Date.now() - dockerStarted) / 1000).toFixed(1)} s`);
});
