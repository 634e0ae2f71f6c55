import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ellipsis, goFormatG, humanDuration, humanSize, shortId, tabwrite } from '../../src/cli/dockerfmt.js';

test('sizes print like go-units HumanSizeWithPrecision(size, 3)', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(6), '6B');
  assert.equal(humanSize(1000), '1kB');
  assert.equal(humanSize(1_240_000), '1.24MB');
  assert.equal(humanSize(123_456), '123kB');
  assert.equal(humanSize(5_577_216), '5.58MB');
  assert.equal(humanSize(999_999), '1e+03kB');
  assert.equal(goFormatG(0.00001234, 3), '1.23e-05');
});

test('durations print like go-units HumanDuration', () => {
  assert.equal(humanDuration(500), 'Less than a second');
  assert.equal(humanDuration(1000), '1 second');
  assert.equal(humanDuration(45_000), '45 seconds');
  assert.equal(humanDuration(90_000), 'About a minute');
  assert.equal(humanDuration(30 * 60_000), '30 minutes');
  assert.equal(humanDuration(3_600_000), 'About an hour');
  assert.equal(humanDuration(5 * 3_600_000), '5 hours');
  assert.equal(humanDuration(3 * 24 * 3_600_000), '3 days');
});

test('ids, ellipsis and tables', () => {
  assert.equal(shortId('sha256:0123456789abcdef0123'), '0123456789ab');
  assert.equal(ellipsis('x'.repeat(50), 45), 'x'.repeat(42) + '...');
  assert.equal(tabwrite([['IMAGE', 'SIZE'], ['abc', '0B']]), 'IMAGE     SIZE\nabc       0B\n');
});
