/**
 * Crash safety: 100 builds (four at a time, on one root) are killed with SIGKILL
 * at random moments; then `tsbuild fsck` (no --repair) must find nothing, no
 * process or mount of a killed build may remain, and a real dockerd opened on the
 * root must load every tagged image. KILL_RUNS / KILL_SEED override the defaults.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

  const started = Date.now();
  let next = 0;
  let completed = 0;
  let killed = 0;
  const failures: string[] = [];
  const worker = async () => {
    while (next < RUNS) {
      const i = next++;
      const ctx = contexts[i % contexts.length]!;
      // Half the builds skip the cache, so they keep writing new layers.
      const args = ['build', '--root', root, '-t', `kill${i}`, '--progress', 'plain', ...(i % 2 === 0 ? ['--no-cache'] : []), ctx];
      const { child, done } = spawnCli(args);
      const delay = 100 + random() * 2500;
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
  const fsckStarted = Date.now();
  const check = await cli(['fsck', '--root', root]);
  t.diagnostic(`fsck: ${((Date.now() - fsckStarted) / 1000).toFixed(1)} s: ${check.stdout.trim().split('\n').pop()}`);
  assert.equal(check.code, 0, `fsck must pass without --repair:\n${check.stdout}${check.stderr}`);
  assert.deepEqual(processesUsing(root), [], 'no process of a killed build may remain');
  assert.deepEqual(mountsUnder(root), [], 'no mount may remain');

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
