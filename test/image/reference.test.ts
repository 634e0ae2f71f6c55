import { test } from 'node:test';
import assert from 'node:assert/strict';
import { familiarName, familiarString, fullName, parseReference, withDefaultTag } from '../../src/image/reference.js';

test('references normalise like Docker', () => {
  const cases: [string, string, string][] = [
    ['busybox', 'docker.io/library/busybox', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox', 'busybox:1.36'],
    ['docker.io/library/busybox:local', 'docker.io/library/busybox', 'busybox:local'],
    ['user/app', 'docker.io/user/app', 'user/app:latest'],
    ['localhost:5000/app:v1', 'localhost:5000/app', 'localhost:5000/app:v1'],
    ['quay.io/a/b/c', 'quay.io/a/b/c', 'quay.io/a/b/c:latest'],
    ['test-image', 'docker.io/library/test-image', 'test-image:latest'],
  ];
  for (const [input, full, familiar] of cases) {
    const ref = withDefaultTag(parseReference(input));
    assert.equal(fullName(ref), full, input);
    assert.equal(familiarString(ref), familiar, input);
  }
  assert.equal(familiarName(parseReference('busybox@sha256:' + 'a'.repeat(64))), 'busybox');
});

test('bad references are rejected', () => {
  for (const bad of ['', 'UPPER', 'a//b', 'a:', 'a:b:c', ':tag', 'a@sha256:xyz', 'a'.repeat(64).replace(/a/g, 'f'), '-a', 'a b']) {
    assert.throws(() => parseReference(bad), /invalid/, bad);
  }
});
