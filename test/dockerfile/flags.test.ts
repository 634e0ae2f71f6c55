import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractFlags, parseFlags } from '../../src/dockerfile/flags.js';

test('leading --flags are extracted; the rest is kept as written', () => {
  const r = extractFlags('--from=build --chown="app user" --link  src dst');
  assert.deepEqual(r.flags.map((f) => [f.name, f.value]), [['from', 'build'], ['chown', 'app user'], ['link', undefined]]);
  assert.equal(r.rest, 'src dst');
});

test('a bare -- ends the flags', () => {
  const r = extractFlags('--link -- --notaflag dst');
  assert.deepEqual(r.flags.map((f) => f.name), ['link']);
  assert.equal(r.rest, '--notaflag dst');
});

test('flags are checked with BuildKit messages', () => {
  const raw = extractFlags('--foo=1 x').flags;
  assert.throws(() => parseFlags(raw, { from: 'string' }), /unknown flag: foo/);
  assert.throws(() => parseFlags(extractFlags('--from x').flags, { from: 'string' }), /missing a value on flag: from/);
  assert.throws(() => parseFlags(extractFlags('--link=maybe x').flags, { link: 'bool' }), /expecting boolean value for flag link, not: maybe/);
  assert.throws(() => parseFlags(extractFlags('--from=a --from=b x').flags, { from: 'string' }), /duplicate flag specified: from/);
  const ok = parseFlags(extractFlags('--mount=type=cache,target=/a --mount=type=tmpfs,target=/b --link=false x').flags, { mount: 'strings', link: 'bool' });
  assert.deepEqual(ok.lists.get('mount'), ['type=cache,target=/a', 'type=tmpfs,target=/b']);
  assert.equal(ok.bools.get('link'), false);
});
