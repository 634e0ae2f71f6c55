import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scan } from '../../src/dockerfile/scanner.js';
import { DockerfileError } from '../../src/errors.js';

test('continuations join lines and drop comment and blank lines inside', () => {
  const r = scan('FROM a\nRUN echo a \\\n# inside\n\n    b \\  \n  c\n');
  assert.equal(r.lines.length, 2);
  assert.equal(r.lines[1]!.text, 'RUN echo a     b   c');
  assert.equal(r.lines[1]!.startLine, 2);
  assert.equal(r.lines[1]!.endLine, 6);
  assert.equal(r.lines[1]!.emptyContinuationLine, true);
});

test('directives: only at the top, case-insensitive, escape changes the continuation char', () => {
  const r = scan('# SYNTAX = docker/dockerfile:1\n# escape=`\nFROM a\nRUN dir c:\\ `\n  /w\n');
  assert.deepEqual(r.directives.map((d) => [d.name, d.value]), [['syntax', 'docker/dockerfile:1'], ['escape', '`']]);
  assert.equal(r.escape, '`');
  assert.equal(r.lines[1]!.text, 'RUN dir c:\\   /w');
});

test('a directive after a comment or blank line is just a comment', () => {
  assert.equal(scan('# hello\n# escape=`\nFROM a\n').escape, '\\');
  assert.equal(scan('\n# escape=`\nFROM a\n').escape, '\\');
  assert.equal(scan('# foo=bar\n# escape=`\nFROM a\n').escape, '\\');
});

test('a repeated directive and a bad escape are errors', () => {
  assert.throws(() => scan('# escape=`\n# escape=\\\nFROM a'), /only one escape parser directive/);
  assert.throws(() => scan('# escape=x\nFROM a'), (e: unknown) => e instanceof DockerfileError && e.range.start.line === 1);
});

test('CRLF line endings and a BOM are accepted', () => {
  const r = scan('\uFEFFFROM a\r\nRUN x \\\r\n y\r\n');
  assert.deepEqual(r.lines.map((l) => l.text), ['FROM a', 'RUN x  y']);
});

test('heredocs: bodies, <<- tab stripping, quoted delimiters, several per line, fd form', () => {
  const src = 'FROM a\nRUN <<EOF cat > /x && <<-"EOT" cat && 3<<X cat\nline $A\nEOF\n\t\tindented\n\tEOT\nfd\nX\nRUN echo after\n';
  const r = scan(src);
  const run = r.lines[1]!;
  assert.deepEqual(run.heredocs.map((h) => [h.name, h.content, h.expand, h.chomp, h.fd]), [
    ['EOF', 'line $A\n', true, false, 0],
    ['EOT', 'indented\n', false, true, 0],
    ['X', 'fd\n', true, false, 3],
  ]);
  assert.equal(run.endLine, 8);
  assert.equal(r.lines[2]!.text, 'RUN echo after');
});

test('heredocs only open in RUN, COPY and ADD', () => {
  const r = scan('FROM a\nENV A=<<EOF\nRUN true\n');
  assert.equal(r.lines.length, 3);
});

test('an unterminated heredoc names its delimiter and line', () => {
  assert.throws(() => scan('FROM a\nRUN <<EOF\nno end\n'), (e: unknown) => e instanceof DockerfileError && /unterminated heredoc EOF/.test(e.message) && e.range.start.line === 2);
});

test('a trailing escape at the end of the file ends the instruction', () => {
  assert.deepEqual(scan('FROM a\nRUN x \\').lines.map((l) => l.text), ['FROM a', 'RUN x ']);
});
