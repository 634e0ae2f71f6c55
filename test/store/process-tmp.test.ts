import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeTree } from '../../src/store/fsutil.js';
import { ownerAlive, ownerToken } from '../../src/store/lock.js';
import { processTmpDir, sweepProcessTmpDirs } from '../../src/store/process-tmp.js';

test('per-process temp dirs: named after the owner, 0700; the sweep removes only dead owners’ dirs', async () => {
  const base = mkdtempSync(join(tmpdir(), 'tsb-ptmp-'));
  const saved = process.env['TMPDIR'];
  process.env['TMPDIR'] = base;
  try {
    const mine = await processTmpDir('disk');
    assert.equal(mine, join(base, `tsbuild-${ownerToken()}`));
    assert.equal(statSync(mine).mode & 0o777, 0o700);
    // A dead owner's dir (no such pid) with a worker dir inside; a foreign name; a live owner's (ours).
    const dead = join(base, 'tsbuild-999999999-1');
    mkdirSync(join(dead, 'worker-x', 'rootfs'), { recursive: true });
    writeFileSync(join(dead, 'worker-x', 'f'), 'x');
    mkdirSync(join(base, 'tsbuild-worker-abc'));
    const killed: string[][] = [];
    const removed = await sweepProcessTmpDirs(async (dirs) => killed.push(dirs));
    assert.ok(removed.includes(dead));
    assert.ok(killed[0]?.includes(dead), 'what still runs there is killed first');
    assert.deepEqual(readdirSync(base).sort(), [`tsbuild-${ownerToken()}`, 'tsbuild-worker-abc'].sort());
  } finally {
    if (saved === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = saved;
    execFileSync('rm', ['-rf', base]);
  }
});

test('removeTree removes a tree deeper than PATH_MAX (where rm -r in Node fails)', async () => {
  const base = mkdtempSync(join(tmpdir(), 'tsb-deep-'));
  try {
    // 600 levels of 9 bytes: 5,400-byte paths, made a step under PATH_MAX at a time.
    const script = "const fs = require('fs'); process.chdir(process.argv[1]); const step = 'dddddddd/'.repeat(200); for (let i = 0; i < 3; i++) { fs.mkdirSync(step, { recursive: true }); process.chdir(step); } fs.writeFileSync('leaf', 'x');";
    mkdirSync(join(base, 't'));
    execFileSync(process.execPath, ['-e', script, join(base, 't')], { stdio: 'pipe' });
    await assert.rejects(rm(join(base, 't'), { recursive: true, force: true }), /ENAMETOOLONG/, 'Node alone cannot');
    await removeTree(join(base, 't'));
    assert.equal(existsSync(join(base, 't')), false);
  } finally {
    execFileSync('rm', ['-rf', base]);
  }
});

test('a zombie owns nothing: its temp dir is swept while it waits to be reaped', async () => {
  // `sleep 0` exits at once; the sh that started it execs `sleep 30`, which never reaps it.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const pid = Number((await new Promise<Buffer>((resolve) => parent.stdout.once('data', resolve))).toString().trim());
    let stat = '';
    for (let i = 0; i < 100; i++) {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    assert.equal(fields[0], 'Z', 'the child is a zombie');
    const token = `${pid}-${fields[19]}`;
    assert.equal(ownerAlive(token), false);
    const dir = join(tmpdir(), `tsbuild-${token}`);
    mkdirSync(dir);
    await sweepProcessTmpDirs(async () => undefined);
    assert.equal(existsSync(dir), false);
  } finally {
    parent.kill('SIGKILL');
  }
});
