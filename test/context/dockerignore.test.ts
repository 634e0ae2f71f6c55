import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { BadPatternError, containsWildcards, goMatch } from '../../src/context/gomatch.js';
import {
  DockerignoreError,
  isExcluded,
  parseDockerignore,
  PatternMatcher,
  readDockerignore,
  trimBuildFilesFromExcludes,
} from '../../src/context/dockerignore.js';
import { tempDir } from './tree-helpers.js';

test('goMatch follows Go filepath.Match', () => {
  const yes: Array<[string, string]> = [
    ['abc', 'abc'],
    ['*', 'abc'],
    ['*c', 'abc'],
    ['a*', 'a'],
    ['a*/b', 'abc/b'],
    ['a*b*c*d*e*/f', 'axbxcxdxe/f'],
    ['a*b?c*x', 'abxbbxdbxebxczzx'],
    ['ab[c]', 'abc'],
    ['ab[b-d]', 'abc'],
    ['ab[^c]', 'abd'],
    ['a\\*b', 'a*b'],
    ['[\\-]', '-'],
    ['[x\\-]', 'x'],
    ['*.txt', 'é.txt'],
    ['?', 'é'],
    ['*x', 'xxx'],
  ];
  for (const [p, n] of yes) assert.equal(goMatch(p, n), true, `${p} ~ ${n}`);
  const no: Array<[string, string]> = [
    ['*', 'a/b'],
    ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff'],
    ['ab[^c]', 'abc'],
    ['ab[e-g]', 'abc'],
    ['a?b', 'a/b'],
    ['a*b', 'a/b'],
    ['*.txt', 'd/f.txt'],
    ['[!a]', '!'.repeat(2)],
  ];
  for (const [p, n] of no) assert.equal(goMatch(p, n), false, `${p} !~ ${n}`);
  for (const bad of ['[', '[^', 'a[', '[]a]', '[-]', '[x-]', '[a-b-c]', 'a\\', '*x\\']) {
    assert.throws(() => goMatch(bad, 'x'), BadPatternError, bad);
  }
});

test('containsWildcards: *, ? and [ unless escaped', () => {
  assert.equal(containsWildcards('a*'), true);
  assert.equal(containsWildcards('a?'), true);
  assert.equal(containsWildcards('[ab]'), true);
  assert.equal(containsWildcards('plain/file.txt'), false);
  assert.equal(containsWildcards('a\\*b'), false);
});

test('parseDockerignore: comments, blanks, ! exceptions, cleaning, leading / and ./', () => {
  const text = '\uFEFF# comment\n\n  *.log  \n!important.log\n/abs/path\n./rel/../x/\n! spaced \n  # not a comment\ndir//sub/\r\n/\n';
  assert.deepEqual(parseDockerignore(text), ['*.log', '!important.log', 'abs/path', 'x', '!spaced', '# not a comment', 'dir/sub', '/']);
});

test('PatternMatcher: *, ?, **, [..], parent dirs, exceptions, last match wins', () => {
  const m = (patterns: string[], path: string): boolean => new PatternMatcher(patterns).matches(path);
  assert.equal(m(['*.log'], 'a.log'), true);
  assert.equal(m(['*.log'], 'd/a.log'), false); // * stays in one segment
  assert.equal(m(['**/*.log'], 'd/e/a.log'), true);
  assert.equal(m(['**/*.log'], 'a.log'), true);
  assert.equal(m(['d/**'], 'd/x/y'), true);
  assert.equal(m(['a?c'], 'abc'), true);
  assert.equal(m(['a[bc]d'], 'acd'), true);
  assert.equal(m(['a[!b]d'], 'a!d'), true); // a regexp class: '!' is a member, not a negation
  assert.equal(m(['a[^b]d'], 'acd'), true);
  assert.equal(m(['node_modules'], 'node_modules/x/y.js'), true); // parent dir
  assert.equal(m(['d/*'], 'd/sub/deep/file'), true); // parent prefix of the pattern's length
  assert.equal(m(['*.txt', '!keep.txt'], 'keep.txt'), false);
  assert.equal(m(['*.txt', '!keep.txt', 'keep*'], 'keep.txt'), true);
  assert.equal(m(['a.b'], 'aXb'), false); // '.' is literal
  assert.equal(m(['a+b'], 'a+b'), true);
  assert.equal(m(['(x)'], '(x)'), true);
  assert.equal(m(['a\\*'], 'a*'), true);
  assert.equal(m(['a]'], 'a]'), true);
  assert.equal(m(['x'], 'x'), true);
  assert.equal(m([], 'x'), false);
});

test('PatternMatcher: bad patterns are errors', () => {
  assert.throws(() => new PatternMatcher(['!']), (e: Error) => e instanceof DockerignoreError && e.message === 'illegal exclusion pattern: "!"');
  assert.throws(() => new PatternMatcher(['a[']), DockerignoreError);
});

test('mayReincludeUnder: only exceptions whose text starts with the dir', () => {
  const pm = new PatternMatcher(['ign', '!ign/keep', '!*/other']);
  assert.equal(pm.mayReincludeUnder('ign'), true);
  assert.equal(pm.mayReincludeUnder('foo'), false); // `!*/other` does not start with foo/
  assert.equal(new PatternMatcher(['ign']).mayReincludeUnder('ign'), false);
});

test('isExcluded never excludes the root; trimBuildFilesFromExcludes keeps Dockerfile and .dockerignore', () => {
  assert.equal(isExcluded('.', ['*']), false);
  assert.equal(isExcluded('./a', ['a']), true);
  assert.deepEqual(trimBuildFilesFromExcludes(['*'], 'Dockerfile'), ['*', '!.dockerignore', '!Dockerfile']);
  assert.deepEqual(trimBuildFilesFromExcludes(['*.md'], 'Dockerfile'), ['*.md']);
  assert.deepEqual(trimBuildFilesFromExcludes(['sub'], 'sub/Dockerfile'), ['sub', '!sub/Dockerfile']);
});

test('readDockerignore: <Dockerfile>.dockerignore wins over .dockerignore', async () => {
  const t = tempDir();
  try {
    const ctx = join(t.dir, 'ctx');
    mkdirSync(join(ctx, 'build'), { recursive: true });
    assert.equal(await readDockerignore({ contextDir: ctx }), undefined);
    writeFileSync(join(ctx, '.dockerignore'), 'a\n');
    assert.deepEqual(await readDockerignore({ contextDir: ctx, dockerfile: join(ctx, 'build/app.Dockerfile') }), { path: join(ctx, '.dockerignore'), patterns: ['a'] });
    writeFileSync(join(ctx, 'build/app.Dockerfile.dockerignore'), 'b\n!c\n');
    assert.deepEqual(await readDockerignore({ contextDir: ctx, dockerfile: join(ctx, 'build/app.Dockerfile') }), {
      path: join(ctx, 'build/app.Dockerfile.dockerignore'),
      patterns: ['b', '!c'],
    });
    assert.deepEqual((await readDockerignore({ contextDir: ctx, dockerfile: join(ctx, 'Dockerfile') }))?.patterns, ['a']);
  } finally {
    t.cleanup();
  }
});
