import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planBuild } from '../../src/plan/planner.js';
import { DockerfileError, TsbuildError } from '../../src/errors.js';
import type { PlannerOptions as PlanOptions } from '../../src/plan/planner.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const plan = (src: string, o: PlanOptions = {}) => planBuild(src, { platform: amd64, buildPlatform: amd64, ...o });
const last = (src: string, o?: PlanOptions) => {
  const p = plan(src, o);
  return p.stages[p.target]!;
};
const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

test('global ARGs reach FROM, and a stage sees them only when re-declared', () => {
  const s = last('ARG V=1\nFROM img:$V\nRUN echo $V\nENV A=${V:-unset}\nARG V\nENV B=$V\n');
  assert.deepEqual(s.base, { kind: 'image', ref: 'img:1' });
  assert.deepEqual(s.config.Env, [PATH, 'A=unset', 'B=1']);
});

test('--build-arg overrides defaults, global and local', () => {
  const s = last('ARG V=1\nFROM img:$V\nARG V\nARG W=x\nENV A=$V B=$W\n', { buildArgs: { V: '2', W: 'y' } });
  assert.deepEqual(s.base, { kind: 'image', ref: 'img:2' });
  assert.deepEqual(s.config.Env, [PATH, 'A=2', 'B=y']);
});

test('ENV wins over an ARG of the same name, and ENV pairs see only earlier state', () => {
  const s = last('FROM a\nARG X=arg\nENV X=env\nENV Y=$X X=new Z=$X\n');
  assert.deepEqual(s.config.Env, [PATH, 'X=new', 'Y=env', 'Z=env']);
});

test('RUN history carries declared build args like the classic builder', () => {
  const s = last('FROM a\nARG B=2\nARG A=1\nARG NOVAL\nRUN echo\n', { buildArgs: { HTTP_PROXY: 'http://p' } });
  const run = s.steps[3]!;
  assert.equal(run.createdBy, '|2 A=1 B=2 /bin/sh -c echo');
  assert.deepEqual(run.runArgs, ['A=1', 'B=2', 'HTTP_PROXY=http://p']);
});

test('metadata history text matches Docker 20.10', () => {
  const s = last('FROM a\nENV A=1\nCMD echo hi\nWORKDIR /app\nEXPOSE 80\nHEALTHCHECK --interval=5m --timeout=3s CMD curl -f http://x/ || exit 1\n');
  assert.deepEqual(s.steps.map((x) => x.createdBy), [
    '/bin/sh -c #(nop)  ENV A=1',
    '/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo hi"]',
    '/bin/sh -c #(nop) WORKDIR /app',
    '/bin/sh -c #(nop)  EXPOSE 80',
    '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "curl -f http://x/ || exit 1"] "5m0s" "3s" "0s" \'\\x00\'}',
  ]);
  assert.deepEqual(s.steps.map((x) => x.emptyLayer), [true, true, 'if-unchanged', true, true]);
});

test('ENTRYPOINT drops an inherited CMD but keeps one set in the stage', () => {
  const resolveImage = () => ({ ...planBuild('FROM scratch\nCMD ["base"]\n').stages[0]!.config });
  assert.equal(last('FROM a\nENTRYPOINT ["e"]\n', { resolveImage }).config.Cmd, null);
  assert.deepEqual(last('FROM a\nCMD ["c"]\nENTRYPOINT ["e"]\n', { resolveImage }).config.Cmd, ['c']);
});

test('SHELL changes later shell forms and the #(nop) prefix', () => {
  const s = last('FROM a\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN echo\nCMD x\n');
  assert.equal(s.steps[1]!.createdBy, '/bin/bash -o pipefail -c echo');
  assert.deepEqual(s.config.Cmd, ['/bin/bash', '-o', 'pipefail', '-c', 'x']);
});

test('WORKDIR resolves relative paths against the current one; absolute ones stay as written', () => {
  assert.equal(last('FROM a\nWORKDIR /a\nWORKDIR b/\nWORKDIR ../c\n').config.WorkingDir, '/a/c');
  assert.equal(last('FROM a\nWORKDIR /srv/app/\n').config.WorkingDir, '/srv/app/');
});

test('a PATH is added when the base has none; ONBUILD triggers of a base stage run first', () => {
  const p = plan('FROM scratch AS base\nONBUILD ENV T=1\nFROM base\nENV U=$T\n');
  assert.deepEqual(p.stages[1]!.config.Env, [PATH, 'T=1', 'U=1']);
  assert.equal(p.stages[1]!.config.OnBuild, null);
  assert.deepEqual(p.stages[1]!.steps.map((s) => s.createdBy), ['/bin/sh -c #(nop)  ENV T=1', '/bin/sh -c #(nop)  ENV U=1']);
});

test('HEALTHCHECK keeps earlier timings in the config, not in the history text', () => {
  const s = last('FROM a\nHEALTHCHECK --interval=10s --retries=5 CMD true\nHEALTHCHECK CMD ["true"]\n');
  assert.deepEqual(s.config.Healthcheck, { Test: ['CMD', 'true'], Interval: 10e9, Retries: 5 });
  assert.match(s.steps[1]!.createdBy, /HEALTHCHECK &\{\["CMD" "true"\] "0s" "0s" "0s" '\\x00'\}$/);
});

test('exec form: trailing text after the JSON array is ignored; [] as Docker 20.10 stores it; non-strings are an error', () => {
  assert.deepEqual(last('FROM a\nCMD ["echo", "x"] trailing\n').config.Cmd, ['echo', 'x']);
  assert.equal(last('FROM a\nENTRYPOINT []\n').config.Entrypoint, null);
  assert.deepEqual(last('FROM a\nCMD []\n').config.Cmd, []);
  assert.equal(last('FROM a\nCMD []\nENTRYPOINT ["e"]\n').config.Cmd, null);
  assert.throws(() => plan('FROM a\nCMD [1, 2]\n'), /arrays must be comprised of strings only/);
});

test('stages: target, build order, and stages the target does not need', () => {
  const src = 'FROM a AS one\nFROM a AS two\nRUN false\nFROM one AS three\nCOPY --from=1 /x /\nFROM a AS four\n';
  const p = plan(src, { target: 'three' });
  assert.equal(p.target, 2);
  assert.deepEqual(p.buildOrder, [0, 1, 2]);
  assert.deepEqual(plan(src).buildOrder, [3]);
  assert.throws(() => plan(src, { target: 'nope' }), (e: unknown) => e instanceof TsbuildError && /target stage "nope" could not be found/.test(e.message));
});

test('a stage that copies from itself, or from a later stage, is rejected with its position', () => {
  assert.throws(() => plan('FROM a AS x\nCOPY --from=x /a /b\n'), (e: unknown) => e instanceof DockerfileError && e.range.start.line === 2 && /circular dependency/.test(e.message));
  assert.throws(() => plan('FROM a AS x\nCOPY --from=y /a /b\nFROM a AS y\nCOPY --from=x /a /b\n'), (e: unknown) => e instanceof DockerfileError && e.range.start.column === 6 && /cannot copy from stage "y", it needs to be defined before current stage "x"/.test(e.message));
  assert.throws(() => plan('FROM a AS build\nFROM a\nCOPY --from=buidl /a /b\n'), /stage "buidl" not found \(did you mean "build"\?/);
  assert.equal(plan('FROM a AS build\nFROM a\nCOPY --from=nginx:1 /a /b\n').stages[1]!.dependsOn.length, 0);
});

test('FROM names an earlier stage case-insensitively; a later name is an image', () => {
  const p = plan('FROM a AS Base\nENV X=1\nFROM BASE\nFROM later\nFROM a AS later\n');
  assert.deepEqual(p.stages[1]!.base, { kind: 'stage', index: 0 });
  assert.deepEqual(p.stages[1]!.config.Env, [PATH, 'X=1']);
  assert.deepEqual(p.stages[2]!.base, { kind: 'image', ref: 'later' });
});

test('TARGET and BUILD platform args are automatic in FROM and on request in a stage', () => {
  const s = last('FROM --platform=$BUILDPLATFORM a\nARG TARGETARCH\nENV T=$TARGETARCH P=$TARGETPLATFORM\n', { platform: { os: 'linux', architecture: 'arm64' } });
  assert.equal(s.platform, 'linux/amd64');
  assert.deepEqual(s.config.Env, [PATH, 'T=arm64', 'P=']);
});

test('unused build args are reported', () => {
  const p = plan('FROM a\nARG USED\n', { buildArgs: { USED: '1', EXTRA: '2', HTTP_PROXY: 'x' } });
  assert.deepEqual(p.warnings.map((w) => w.message), ['One or more build-args [EXTRA] were not consumed']);
});

test('errors carry file, line and column and show the line', () => {
  try {
    plan('FROM a\n  COPY --form=x a b\n', { file: 'ctx/Dockerfile' });
    assert.fail('no error');
  } catch (e) {
    assert.ok(e instanceof DockerfileError);
    assert.equal(e.format().split('\n')[0], 'ctx/Dockerfile:2:8: unknown flag: form');
    assert.match(e.format(), /2 \|   COPY --form=x a b/);
  }
});

test('heredoc RUN: a lone heredoc is the script; a shebang runs it as a file; otherwise the shell reads the heredocs', () => {
  const s = last('FROM a\nRUN <<EOF\necho one\nEOF\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN cat > /x <<EOT\nbody\nEOT\n');
  assert.deepEqual(s.steps[0]!.cacheCmd, ['/bin/sh', '-c', 'echo one\n']);
  assert.deepEqual(s.steps[1]!.cacheCmd, ['/dev/pipes/EOF']);
  assert.deepEqual((s.steps[1]!.instruction as { script?: unknown }).script, { path: '/dev/pipes/EOF', content: '#!/usr/bin/env python3\nprint(1)\n' });
  assert.deepEqual(s.steps[2]!.cacheCmd, ['/bin/sh', '-c', 'cat > /x <<EOT\nbody\nEOT']);
});
