// BuildContext.toTransfer/fromTransfer: what a rootfs worker copies from is the context the build
// walked, entry for entry (links, hard links, implied parents, capabilities), as JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildContext, loadBuildContext } from '../../src/context/tree.js';
import { resolveCopy } from '../../src/context/sources.js';
import type { CopyInstruction } from '../../src/instructions/types.js';

const asRoot = process.getuid?.() !== 0 ? 'needs root (security.capability)' : undefined;

test('a context survives the trip to a worker, capabilities included', { skip: asRoot }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-transfer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'a/b'), { recursive: true });
  mkdirSync(join(dir, 'skip/keep'), { recursive: true });
  writeFileSync(join(dir, 'a/b/f'), 'f\n');
  linkSync(join(dir, 'a/b/f'), join(dir, 'a/hard'));
  symlinkSync('b/f', join(dir, 'a/link'));
  writeFileSync(join(dir, 'skip/keep/x'), 'x\n');
  writeFileSync(join(dir, 'cap'), 'c\n');
  // cap_net_raw+ep, VFS_CAP_REVISION_2.
  execFileSync('setfattr', ['-n', 'security.capability', '-v', '0x0000000200200000000000000000000000000000', join(dir, 'cap')]);
  // An excluded directory with a re-included child: the child's parents are implied.
  writeFileSync(join(dir, '.dockerignore'), 'skip\n!skip/keep/x\n');
  const ctx = await loadBuildContext({ contextDir: dir, lazyCapabilities: true });
  await ctx.readCapabilities();
  const back = BuildContext.fromTransfer(JSON.parse(JSON.stringify(ctx.toTransfer())));
  assert.deepEqual(back.paths(), ctx.paths());
  for (const rel of ctx.paths()) {
    const { stamp: _stamp, ...want } = (await ctx.lstat(rel))!;
    assert.deepEqual(await back.lstat(rel), want, rel);
  }
  assert.ok((await back.lstat('cap'))?.capability?.length === 20);
  assert.equal((await back.lstat('skip'))?.implied, true);
  assert.equal((await back.lstat('a/hard'))?.hardlinkTo, 'a/b/f');
  // Resolving a copy needs nothing more: the same plan, without hashes.
  const instr = { kind: 'COPY', sources: ['a', 'cap'], dest: '/d/', heredocs: [], exclude: [], parents: false, link: false } as unknown as CopyInstruction;
  const plan = await resolveCopy(instr, { tree: back, workdir: '/', hashes: false });
  assert.deepEqual(plan.operations.map((o) => [o.source.resolved, o.source.type, o.dest]), [['a', 'dir', '/d/'], ['cap', 'file', '/d/']]);
});
