import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goDuration, goQuote, goQuoteRune, goQuoteSlice, goSlice, parseGoDuration } from '../../src/plan/gofmt.js';

test('goQuote matches strconv.Quote', () => {
  assert.equal(goQuote('echo "hi"\n\ttab\\'), '"echo \\"hi\\"\\n\\ttab\\\\"');
  assert.equal(goQuote('héllo ✓'), '"héllo ✓"');
  assert.equal(goQuote('\x00\x7f\u00a0'), '"\\x00\\x7f\\u00a0"');
});

test('slices print like %q and %v', () => {
  assert.equal(goQuoteSlice(['/bin/sh', '-c', 'echo hi']), '["/bin/sh" "-c" "echo hi"]');
  assert.equal(goSlice(['/data', '/logs']), '[/data /logs]');
  assert.equal(goQuoteRune(0), "'\\x00'");
  assert.equal(goQuoteRune(3), "'\\x03'");
  assert.equal(goQuoteRune(65), "'A'");
});

test('durations parse and print like Go', () => {
  assert.equal(parseGoDuration('1m30s'), 90e9);
  assert.equal(parseGoDuration('1.5s'), 1.5e9);
  assert.equal(parseGoDuration('500ms'), 5e8);
  assert.equal(parseGoDuration('abc'), undefined);
  assert.equal(parseGoDuration('10'), undefined);
  assert.equal(goDuration(90e9), '1m30s');
  assert.equal(goDuration(300e9), '5m0s');
  assert.equal(goDuration(3600e9), '1h0m0s');
  assert.equal(goDuration(5e8), '500ms');
  assert.equal(goDuration(1.5e9), '1.5s');
  assert.equal(goDuration(0), '0s');
});
