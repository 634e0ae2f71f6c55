// --history-style buildkit: what the plan records so that images match BuildKit's
// (test/e2e/buildkit.test.ts checks the same against a real BuildKit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planBuild, BUILDKIT_HISTORY_COMMENT } from '../../src/plan/planner.js';
import { resolveChown } from '../../src/exec/copy-chown.js';
import type { CopyInstruction } from '../../src/instructions/types.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const plan = (src: string, style: 'classic' | 'buildkit', buildArgs: Record<string, string> = {}) =>
  planBuild(src, { platform: amd64, buildPlatform: amd64, historyStyle: style, buildArgs });

test('buildkit style: every entry commented, ONBUILD without an entry, classic unchanged', () => {
  const src = 'FROM busybox\nENV A=1\nONBUILD RUN echo hi\nCMD ["x"]\n';
  const bk = plan(src, 'buildkit').stages[0]!.steps;
  assert.deepEqual(bk.map((s) => [s.historyComment, s.noHistory]), [[BUILDKIT_HISTORY_COMMENT, undefined], [undefined, true], [BUILDKIT_HISTORY_COMMENT, undefined]]);
  const classic = plan(src, 'classic').stages[0]!.steps;
  assert.ok(classic.every((s) => s.historyComment === undefined && s.noHistory === undefined));
});

test('buildkit style: RUN lists every declared ARG in order, ENV wins, unset is empty', () => {
  const src = 'FROM busybox\nARG Z=1\nARG UNSET\nARG A\nENV A=env\nRUN true\n';
  const bk = plan(src, 'buildkit', { Z: '2' }).stages[0]!.steps.at(-1)!;
  assert.equal(bk.createdBy, 'RUN |3 Z=2 UNSET= A=env /bin/sh -c true # buildkit');
  assert.equal(bk.emptyLayer, false, 'BuildKit commits a layer (the empty one) for every RUN');
  const classic = plan(src, 'classic', { Z: '2' }).stages[0]!.steps.at(-1)!;
  assert.equal(classic.createdBy, '|1 Z=2 /bin/sh -c true');
  assert.deepEqual(classic.cacheCmd, bk.cacheCmd, 'the cache key does not depend on the style');
  assert.equal(classic.emptyLayer, 'if-unchanged');
});

test('buildkit style: WORKDIR / has no layer, any other WORKDIR one; CMD sets ArgsEscaped', () => {
  const s = plan('FROM busybox\nWORKDIR /\nWORKDIR /tmp\nCMD x\n', 'buildkit').stages[0]!;
  assert.deepEqual(s.steps.map((x) => x.emptyLayer), [true, false, true]);
  assert.equal(s.config.ArgsEscaped, true);
  assert.equal(plan('FROM busybox\nCMD x\n', 'classic').stages[0]!.config.ArgsEscaped, undefined);
});

test('buildkit style: --chown=<user> takes the user\'s primary group', async (t) => {
  const chown = (style: 'classic' | 'buildkit', spec: string) => (plan(`FROM busybox\nCOPY --chown=${spec} a /a\n`, style).stages[0]!.steps[0]!.instruction as CopyInstruction).chownPrimaryGroup;
  assert.equal(chown('buildkit', 'svc'), true);
  assert.equal(chown('buildkit', 'svc:grp'), undefined);
  assert.equal(chown('classic', 'svc'), undefined);
  const rootfs = mkdtempSync(join(tmpdir(), 'tsbuild-chown-'));
  t.after(() => rmSync(rootfs, { recursive: true, force: true }));
  mkdirSync(join(rootfs, 'etc'));
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'svc:x:2001:2000::/:/bin/sh\n');
  writeFileSync(join(rootfs, 'etc', 'group'), 'staff:x:2000:\n');
  assert.deepEqual(await resolveChown('svc', rootfs, true), { uid: 2001, gid: 2000 });
  assert.deepEqual(await resolveChown('1234', rootfs, true), { uid: 1234, gid: 1234 });
  await assert.rejects(resolveChown('svc', rootfs), /can't find gid for group svc/, 'classic: the user name doubles as the group name');
});
