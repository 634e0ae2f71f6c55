import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  ExpansionError,
  expandWord,
  expandWords,
  lookupFrom,
  splitWords,
  type EscapeToken,
  type VariableLookup,
} from '../../src/dockerfile/expand.js';
import { TsbuildError } from '../../src/errors.js';

/** The environment BuildKit's own lexer tests use, plus a few of ours. */
const ENV: Record<string, string> = {
  PWD: '/home',
  SHELL: 'bash',
  KOREAN: '한국어',
  NULL: '',
  FILE: 'archive.tar.gz',
  PATHS: '/usr/local/bin:/usr/bin:/bin',
  SPACED: '  ab c  ',
};

const vars = (extra: Record<string, string> = {}): VariableLookup => lookupFrom({ ...ENV, ...extra });

interface WordCase {
  input: string;
  expected: string;
  env?: Record<string, string>;
  escape?: EscapeToken;
}

function checkWords(title: string, cases: WordCase[]): void {
  describe(title, () => {
    for (const c of cases) {
      test(`${c.escape === '`' ? '[`] ' : ''}${JSON.stringify(c.input)} → ${JSON.stringify(c.expected)}`, () => {
        assert.equal(expandWord(c.input, vars(c.env), c.escape).value, c.expected);
      });
    }
  });
}

checkWords('plain text, quotes and escapes', [
  { input: 'hello', expected: 'hello' },
  { input: "he'll'o", expected: 'hello' },
  { input: "he\\'llo", expected: "he'llo" },
  { input: 'abc\\tdef', expected: 'abctdef' },
  { input: '"abc\\tdef"', expected: 'abc\\tdef' },
  { input: '"abc\\\\tdef"', expected: 'abc\\tdef' },
  { input: "'abc\\tdef'", expected: 'abc\\tdef' },
  { input: 'hello\\', expected: 'hello' },
  { input: 'hello\\\\', expected: 'hello\\' },
  { input: '"hel\'lo"', expected: "hel'lo" },
  { input: "'hello\\'", expected: 'hello\\' },
  { input: "'hello\\\\there'", expected: 'hello\\\\there' },
  { input: `"''"`, expected: "''" },
  { input: `'"hello"'`, expected: '"hello"' },
  { input: 'a" b "c', expected: 'a b c' },
  { input: '"a\\"b"', expected: 'a"b' },
  { input: '안\'녕\'하세요', expected: '안녕하세요' },
  { input: '"안녕\\t하세요"', expected: '안녕\\t하세요' },
  { input: '\uFEFFbom', expected: 'bom' }, // Go's scanner drops a leading BOM
]);

checkWords('$name and ${name}', [
  { input: '$PWD', expected: '/home' },
  { input: 'he$PWD', expected: 'he/home' },
  { input: 'he${PWD}', expected: 'he/home' },
  { input: 'he$pwd.', expected: 'he.' }, // names are case-sensitive
  { input: 'he${hi}xx', expected: 'hexx' },
  { input: '$KOREAN', expected: '한국어' },
  { input: '안녕$KOREAN', expected: '안녕한국어' },
  { input: '$FOO_bar', expected: 'joined', env: { FOO: 'x', FOO_bar: 'joined' } },
  { input: '${FOO}_bar', expected: 'x_bar', env: { FOO: 'x', FOO_bar: 'joined' } },
  { input: '$FOO-bar', expected: 'x-bar', env: { FOO: 'x' } },
  { input: '$FOO.bar', expected: 'x.bar', env: { FOO: 'x' } },
  { input: '$été', expected: 'summer', env: { été: 'summer' } }, // Unicode letters are name characters
  { input: '${aaa}}', expected: '}' },
  { input: '$.', expected: '$.' },
  { input: 'he$.x', expected: 'he$.x' },
  { input: '$', expected: '$' },
  { input: 'a$ b', expected: 'a$ b' },
  { input: '$"x"', expected: '$x' },
  { input: 'he\\$PWD', expected: 'he$PWD' },
  { input: 'he\\\\$PWD', expected: 'he\\/home' },
  { input: '\\${}aaa', expected: '${}aaa' },
  { input: '"$PWD"', expected: '/home' },
  { input: '"he\\$PWD"', expected: 'he$PWD' },
  { input: '"he\\\\$PWD"', expected: 'he\\/home' },
  { input: `"he'$PWD'"`, expected: "he'/home'" },
  { input: "'$PWD'", expected: '$PWD' },
  { input: "'he${XX}'", expected: 'he${XX}' },
  { input: "'\\$PWD'", expected: '\\$PWD' },
]);

checkWords('positional and special parameters (never set)', [
  { input: 'he$1x', expected: 'hex' },
  { input: '$999aaa', expected: 'aaa' },
  { input: '${001:-bbb}aaa', expected: 'bbbaaa' },
  { input: '${1:+bbb}', expected: '' },
  { input: '$@@@', expected: '@@' },
  { input: '${@:-bbb}aaa', expected: 'bbbaaa' },
  { input: '$0x', expected: 'x' },
  { input: '$#$?$-$$$!$*', expected: '' },
  { input: '${#}', expected: '' },
  { input: '${$:-pid}', expected: 'pid' },
]);

checkWords('${name-word}, ${name:-word}, ${name+word}, ${name:+word}', [
  { input: 'he${XXX:-000}xx', expected: 'he000xx' },
  { input: 'he${PWD:-000}xx', expected: 'he/homexx' },
  { input: 'he${XXX:-$PWD}xx', expected: 'he/homexx' },
  { input: 'he${XXX:-${PWD:-yyy}}xx', expected: 'he/homexx' },
  { input: 'he${XXX:-${YYY:-yyy}}xx', expected: 'heyyyxx' },
  { input: '${NULL:-empty}', expected: 'empty' },
  { input: '${NULL-empty}', expected: '' },
  { input: '${XXX-unset}', expected: 'unset' },
  { input: 'he${XXX:+${PWD}}xx', expected: 'hexx' },
  { input: 'he${PWD:+${SHELL}}xx', expected: 'hebashxx' },
  { input: '${NULL:+set}', expected: '' },
  { input: '${NULL+set}', expected: 'set' },
  { input: 'he${PWD:+${PWD}:}xx', expected: 'he/home:xx' },
  { input: 'he${XXX:-\\$PWD:}xx', expected: 'he$PWD:xx' },
  { input: 'he${XXX:-\\${PWD}z}xx', expected: 'he${PWDz}xx' },
  { input: '${aaa:-bbb}}', expected: 'bbb}' },
  { input: '${aaa:-bbb {foo}', expected: 'bbb {foo' },
  { input: '${aaa:-"a }b"}', expected: 'a }b' },
  { input: "${aaa:-'$PWD'}", expected: '$PWD' },
  { input: '${aaa:-}', expected: '' },
  {
    input: 'tool-${V}.${OS}-${ARCH}${VARIANT:+-${VARIANT}}.tgz',
    expected: 'tool-1.2.linux-arm-v7.tgz',
    env: { V: '1.2', OS: 'linux', ARCH: 'arm', VARIANT: 'v7' },
  },
  {
    input: 'tool-${V}.${OS}-${ARCH}${VARIANT:+-${VARIANT}}.tgz',
    expected: 'tool-1.2.linux-arm64.tgz',
    env: { V: '1.2', OS: 'linux', ARCH: 'arm64', VARIANT: '' },
  },
]);

checkWords('${name?msg} and ${name:?msg} that pass', [
  { input: 'he${PWD?}', expected: 'he/home' },
  { input: 'he${PWD:?}', expected: 'he/home' },
  { input: 'he${NULL?}', expected: 'he' },
  { input: '${PWD:?must be set}', expected: '/home' },
]);

checkWords('${name#pattern}, ##, %, %%', [
  { input: '${FILE#*.}', expected: 'tar.gz' },
  { input: '${FILE##*.}', expected: 'gz' },
  { input: '${FILE%.*}', expected: 'archive.tar' },
  { input: '${FILE%%.*}', expected: 'archive' },
  { input: '${FILE#archive}', expected: '.tar.gz' },
  { input: '${FILE#nomatch}', expected: 'archive.tar.gz' },
  { input: '${FILE#}', expected: 'archive.tar.gz' },
  { input: '${FILE%%}', expected: 'archive.tar.gz' },
  { input: '${FOO#*x*y}', expected: 'y', env: { FOO: 'xxyy' } },
  { input: '${FOO#*}', expected: 'xxyy', env: { FOO: 'xxyy' } },
  { input: '${FOO##*}', expected: '', env: { FOO: 'xxyy' } },
  { input: '${FOO#$BAR}', expected: 'xyy', env: { FOO: 'xxyy', BAR: 'x' } },
  { input: '${FOO%x}', expected: 'xxyy', env: { FOO: 'xxyy' } },
  { input: '${FOO#?\\?}', expected: '?y', env: { FOO: '???y' } },
  { input: '${FOO%%\\**}', expected: 'xx', env: { FOO: 'xx**' } },
  { input: '${FOO%%\\**\\*}', expected: 'a', env: { FOO: 'a***yy*' } },
  { input: '${FOO#()[]{\\}^$.\\*\\?|\\\\}', expected: 'x', env: { FOO: '()[]{}^$.*?|\\x' } },
  { input: '${PATHS#*:}', expected: '/usr/bin:/bin' },
  { input: '${PATHS%:*}', expected: '/usr/local/bin:/usr/bin' },
  { input: '${UNSET#*}', expected: '' },
  { input: '${FOO#😀}', expected: '🚀', env: { FOO: '😀🚀' } },
  { input: '${FOO%?}', expected: '😀', env: { FOO: '😀🚀' } },
  // No bracket expressions in BuildKit: `[` is literal.
  { input: '${FOO#[a]}', expected: 'bc', env: { FOO: '[a]bc' } },
  // Quotes are removed before the glob is built, so a quoted `*` is still a wildcard.
  { input: '${FOO#"*"}', expected: 'abc', env: { FOO: 'abc' } },
  // `?` and `*` don't match a newline (Go's `.`), but do match \r.
  { input: '${FOO#*}', expected: 'a\nb', env: { FOO: 'a\nb' } },
  { input: '${FOO##*}', expected: '\nb', env: { FOO: 'a\nb' } },
  { input: '${FOO#??}', expected: 'b', env: { FOO: 'a\rb' } },
]);

checkWords('${name/pattern/repl} and ${name//pattern/repl}', [
  { input: '${PATHS/:/ }', expected: '/usr/local/bin /usr/bin:/bin' },
  { input: '${PATHS//:/ }', expected: '/usr/local/bin /usr/bin /bin' },
  { input: '${FOO/$N/.} - ${FOO//$N/.}', expected: '/foo.*/*.txt - /foo..*.txt', env: { FOO: '/foo*/*/*.txt', N: '\\*/' } },
  { input: '${FOO/$N/} - ${FOO//$N/}', expected: '/tmp/bar.txt - /bar.txt', env: { FOO: '/tmp/tmp/bar.txt', N: '/tmp' } },
  { input: '${FOO/$N/$R} - ${FOO//$N/$R}', expected: '/foo/b/c.txt - /foo/c.txt', env: { FOO: '/a/foo/b/c.txt', N: '/?/', R: '/' } },
  { input: '${FOO/http:\\/\\//https://}', expected: 'https://example.com', env: { FOO: 'http://example.com' } },
  // The replacement keeps its escape characters (BuildKit reads it with raw escapes).
  { input: '${FOO//\\//\\/}', expected: '\\/tmp\\/foo.txt', env: { FOO: '/tmp/foo.txt' } },
  { input: '${FOO/*/x}', expected: 'x', env: { FOO: 'abc' } },
  // Go's ReplaceAll skips an empty match right after a match (JS would give "xx").
  { input: '${FOO//*/x}', expected: 'x', env: { FOO: 'abc' } },
  { input: '${FOO//$E/-}', expected: '-a-b-c-', env: { FOO: 'abc', E: '' } },
  { input: '${FOO/$E/-}', expected: '-abc', env: { FOO: 'abc', E: '' } },
  { input: '${FOO///}', expected: 'xxyy', env: { FOO: 'xxyy' } },
  { input: '${UNSET//a/b}', expected: '' },
  // Replace-all passes the replacement through Go's template expansion: $0 is the match…
  { input: '${FOO//b/\\$0}', expected: 'a\\bc', env: { FOO: 'abc' } },
  { input: '${FOO//b/<$R>}', expected: 'a<b>c', env: { FOO: 'abc', R: '$0' } },
  { input: '${FOO//b/<$R>}', expected: 'a<$>c', env: { FOO: 'abc', R: '$$' } },
  { input: '${FOO//b/<$R>}', expected: 'a<>c', env: { FOO: 'abc', R: '$x' } },
  // …but single replacement does not.
  { input: '${FOO/b/<$R>}', expected: 'a<$0>c', env: { FOO: 'abc', R: '$0' } },
  // `$0` written directly is the (unset) positional parameter, expanded first.
  { input: '${FOO//-/$0}', expected: 'ab', env: { FOO: 'a-b' } },
]);

checkWords('backtick escape token', [
  { input: 'a`$b', expected: 'a$b', escape: '`' },
  { input: 'a\\b', expected: 'a\\b', escape: '`' },
  { input: 'C:\\path\\$X', expected: 'C:\\path\\x', escape: '`', env: { X: 'x' } },
  { input: '"a`"b``c`d"', expected: 'a"b`c`d', escape: '`' },
  { input: '"\\$X"', expected: '\\x', escape: '`', env: { X: 'x' } },
  { input: 'a` b', expected: 'a b', escape: '`' },
  { input: 'end`', expected: 'end', escape: '`' },
  { input: '${X:-`}}', expected: '}', escape: '`' },
  // Glob escapes stay backslashes whatever the escape token.
  { input: '${FOO#\\*}', expected: 'x', escape: '`', env: { FOO: '*x' } },
  { input: '${FOO#`*}', expected: '*x', escape: '`', env: { FOO: '`*x' } },
  { input: '${FOO//`//_}', expected: 'a/b', escape: '`', env: { FOO: 'a/b' } },
]);

describe('expandWords (ProcessWords)', () => {
  const cases: { input: string; expected: string[]; env?: Record<string, string> }[] = [
    { input: 'hello', expected: ['hello'] },
    { input: 'hello${hi}bye', expected: ['hellobye'] },
    { input: 'hello${hi}bye', expected: ['hellohibye'], env: { hi: 'hi' } },
    { input: 'hello${space}bye', expected: ['helloabc', 'defbye'], env: { space: 'abc  def' } },
    { input: 'hello"${space}"bye', expected: ['helloabc  defbye'], env: { space: 'abc  def' } },
    { input: 'hello "${space}"bye', expected: ['hello', 'abc  defbye'], env: { space: 'abc  def' } },
    { input: 'hello${leading}def', expected: ['hello', 'ab', 'cdef'], env: { leading: '  ab c' } },
    { input: 'hello"${leading}" def', expected: ['hello  ab c', 'def'], env: { leading: '  ab c' } },
    { input: 'hello${trailing}d', expected: ['helloab', 'c', 'd'], env: { trailing: 'ab c   ' } },
    { input: 'hel"lo${trailing}"', expected: ['helloab c   '], env: { trailing: 'ab c   ' } },
    { input: 'hello" there  "', expected: ['hello there  '] },
    { input: 'hello there     ', expected: ['hello', 'there'] },
    { input: '  a \t b\n c  ', expected: ['a', 'b', 'c'] },
    { input: 'hello\\ there', expected: ['hello there'] },
    { input: 'hello\\" there', expected: ['hello"', 'there'] },
    { input: 'hello"\\\\there"', expected: ['hello\\there'] },
    { input: "hello'\\\\there'", expected: ['hello\\\\there'] },
    { input: "hello'$there'", expected: ['hello$there'] },
    { input: 'a b "c d"', expected: ['a', 'b', 'c d'] },
    { input: `a 'b  c'"d e" f`, expected: ['a', 'b  cd e', 'f'] },
    { input: '$SPACED', expected: ['ab', 'c'] },
    { input: '"$SPACED"', expected: ['  ab c  '] },
    // Empty results vanish: unquoted empty expansions and also "" and ''.
    { input: 'a $NULL b', expected: ['a', 'b'] },
    { input: `a "" b ''`, expected: ['a', 'b'] },
    { input: '$UNSET', expected: [] },
    { input: '', expected: [] },
    // The default word is split after expansion; its quotes don't protect it.
    { input: '${X:-"x y"} z', expected: ['x', 'y', 'z'] },
    { input: '"${X:-x y}" z', expected: ['x y', 'z'] },
    // A word before a modifier expansion is kept (BuildKit ≥0.15 loses it; see expand.ts).
    { input: 'pre${X:-post}', expected: ['prepost'] },
    { input: '80${PROTO:-/tcp} 443', expected: ['80/tcp', '443'] },
    // `<<` and the blanks after it stick together, for heredoc markers.
    { input: 'cat <<  EOF file', expected: ['cat', '<<  EOF', 'file'] },
    { input: 'a < b', expected: ['a', '<', 'b'] },
    // Go's unicode.IsSpace: NBSP and ideographic space split, a ZWNBSP does not.
    { input: '$S', expected: ['a', 'b', 'c\uFEFFd'], env: { S: 'a\u00A0b\u3000c\uFEFFd' } },
  ];
  for (const c of cases) {
    test(`${JSON.stringify(c.input)} → ${JSON.stringify(c.expected)}`, () => {
      assert.deepEqual(expandWords(c.input, vars(c.env)).words, c.expected);
    });
  }

  test('backtick escape', () => {
    assert.deepEqual(expandWords('a` b c`$X', vars({ X: 'x' }), '`').words, ['a b', 'c$X']);
  });

  test('reports used variables', () => {
    assert.deepEqual([...expandWords('$A "${B:-$C}" \\$D', vars()).used].sort(), ['A', 'B', 'C']);
  });
});

describe('splitWords (no expansion)', () => {
  const cases: { input: string; expected: string[]; escape?: EscapeToken }[] = [
    { input: 'a b  c', expected: ['a', 'b', 'c'] },
    { input: 'a "b c" d', expected: ['a', 'b c', 'd'] },
    { input: `'$x y' "$x y"`, expected: ['$x y', '$x y'] },
    { input: '$x ${y:-z}', expected: ['$x', '${y:-z}'] },
    { input: '\\$x "\\$y" a\\ b', expected: ['$x', '$y', 'a b'] },
    { input: '"a\\"b" "c\\d"', expected: ['a"b', 'c\\d'] },
    { input: 'a` b "c`"d"', expected: ['a b', 'c"d'], escape: '`' },
    { input: 'C:\\dir "x y"', expected: ['C:\\dir', 'x y'], escape: '`' },
    { input: '"" x', expected: ['x'] },
    { input: '   ', expected: [] },
  ];
  for (const c of cases) {
    test(`${JSON.stringify(c.input)} → ${JSON.stringify(c.expected)}`, () => {
      assert.deepEqual(splitWords(c.input, c.escape), c.expected);
    });
  }

  test('unterminated quote is still an error', () => {
    assert.throws(() => splitWords('a "b'), (err: unknown) => err instanceof ExpansionError && err.offset === 2);
  });
});

describe('used tracking', () => {
  const cases: { input: string; env: Record<string, string>; value: string; used: string[] }[] = [
    { input: 'x', env: { DUMMY: 'dummy' }, value: 'x', used: [] },
    { input: 'x ${UNUSED}', env: {}, value: 'x ', used: ['UNUSED'] },
    { input: 'x ${FOO}', env: { FOO: 'y' }, value: 'x y', used: ['FOO'] },
    { input: '${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}', env: { FOO: 'xxx', BAR: '' }, value: 'xxx  ccc', used: ['BAR', 'BAZ', 'FOO'] },
    { input: '${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}', env: { FOO: 'xxx', BAR: '' }, value: 'xxx bbb ccc', used: ['BAR', 'BAZ', 'FOO'] },
    { input: '${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}', env: { FOO: 'xxx', BAR: '' }, value: 'aaa bbb ', used: ['BAR', 'BAZ', 'FOO'] },
    { input: '${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}', env: { FOO: 'xxx', BAR: '' }, value: 'aaa  ', used: ['BAR', 'BAZ', 'FOO'] },
    { input: '${ABC:-.}${FOO%x}${ABC:-.}', env: { FOO: 'xxyy' }, value: '.xxyy.', used: ['ABC', 'FOO'] },
    { input: '${FOO/$N/$R}', env: { FOO: 'http://a', N: 'http', R: 'https' }, value: 'https://a', used: ['FOO', 'N', 'R'] },
    // Default words are expanded even when the variable is set, so they count as used.
    { input: '${FOO:-$BAR}', env: { FOO: 'x' }, value: 'x', used: ['BAR', 'FOO'] },
    { input: "'$FOO' \\$BAR", env: {}, value: '$FOO $BAR', used: [] },
    { input: '$1${@}', env: {}, value: '', used: ['1', '@'] },
  ];
  for (const c of cases) {
    test(JSON.stringify(c.input), () => {
      const result = expandWord(c.input, lookupFrom(c.env));
      assert.equal(result.value, c.value);
      assert.deepEqual([...result.used].sort(), c.used);
    });
  }
});

describe('errors', () => {
  const cases: { input: string; reason: string; offset: number; env?: Record<string, string>; escape?: EscapeToken }[] = [
    { input: "he'llo", reason: 'unexpected end of statement while looking for matching single-quote', offset: 2 },
    { input: "he\\\\'llo", reason: 'unexpected end of statement while looking for matching single-quote', offset: 4 },
    { input: '"hello', reason: 'unexpected end of statement while looking for matching double-quote', offset: 0 },
    { input: '"hello\\"', reason: 'unexpected end of statement while looking for matching double-quote', offset: 0 },
    { input: 'x"a`"', reason: 'unexpected end of statement while looking for matching double-quote', offset: 1, escape: '`' },
    { input: '안\'녕하세요', reason: 'unexpected end of statement while looking for matching single-quote', offset: 1 },
    { input: '${}', reason: 'syntax error: bad substitution', offset: 2 },
    { input: 'he${}xx', reason: 'syntax error: bad substitution', offset: 4 },
    { input: '${{aaa}', reason: 'syntax error: bad substitution', offset: 2 },
    { input: '${:-bbb}', reason: 'syntax error: bad substitution', offset: 2 },
    { input: 'he${', reason: "syntax error: missing '}'", offset: 2 },
    { input: 'he${PWD', reason: "syntax error: missing '}'", offset: 2 },
    { input: '${aaa:-bbb', reason: "syntax error: missing '}'", offset: 0 },
    { input: '${aaa:-bbb ${foo}', reason: "syntax error: missing '}'", offset: 0 },
    // An error that runs into the end inside ${…} is reported as the unclosed ${.
    { input: 'a${X:-"b}', reason: "syntax error: missing '}'", offset: 1 },
    { input: '${X:-${Y:?oops}', reason: "syntax error: missing '}'", offset: 0 },
    { input: '${X/abc', reason: "syntax error: missing '/' in ${}", offset: 0 },
    { input: '${X//}', reason: "syntax error: missing '/' in ${}", offset: 0 },
    { input: '${X/a/b', reason: "syntax error: missing '}'", offset: 0 },
    { input: 'he${.}', reason: 'unsupported modifier (.) in substitution', offset: 4 },
    { input: 'he${XXX:YYY}', reason: 'unsupported modifier (:Y) in substitution', offset: 7 },
    { input: 'he${PWD:=000}xx', reason: 'unsupported modifier (:=) in substitution', offset: 7 },
    { input: '${FOO=aaa}', reason: 'unsupported modifier (=) in substitution', offset: 5 },
    { input: '${FOO:#x}', reason: 'unsupported modifier (:#) in substitution', offset: 5 },
    { input: '${FOO:%%}', reason: 'unsupported modifier (:%) in substitution', offset: 5 },
    { input: '${a b}', reason: 'unsupported modifier ( ) in substitution', offset: 3 },
    // `${#var}` (length) is not supported: `#` is read as the special parameter.
    { input: '${#FOO}', reason: 'unsupported modifier (F) in substitution', offset: 3 },
    { input: 'he${XXX?}', reason: 'XXX: is not allowed to be unset', offset: 2 },
    { input: 'he${XXX:?}', reason: 'XXX: is not allowed to be unset', offset: 2 },
    { input: 'he${NULL:?}', reason: 'NULL: is not allowed to be empty', offset: 2 },
    { input: 'x ${VAR:?message here$ARG}', reason: 'VAR: message herex', offset: 2, env: { ARG: 'x' } },
    { input: '${VAR?message here$ARG}', reason: 'VAR: message herex', offset: 0, env: { ARG: 'x' } },
    { input: '${X:-${Y:?oops}}', reason: 'Y: oops', offset: 5 },
    { input: '${FOO#\\x}', reason: "invalid pattern (\\x) in substitution: invalid escape '\\x'", offset: 0, env: { FOO: 'a' } },
    { input: '${FOO#$P}', reason: "invalid pattern (a\\) in substitution: invalid escape '\\\uFFFD'", offset: 0, env: { FOO: 'a', P: 'a\\' } },
    // BuildKit names the reversed pattern for % and %%.
    { input: '${FOO%$P}', reason: "invalid pattern (\\b) in substitution: invalid escape '\\b'", offset: 0, env: { FOO: 'a', P: '\\b' } },
    { input: '${FOO//\\//_}', reason: "invalid pattern (\\) in substitution: invalid escape '\\\uFFFD'", offset: 0, env: { FOO: 'a' }, escape: '`' },
  ];
  for (const c of cases) {
    test(`${c.escape === '`' ? '[`] ' : ''}${JSON.stringify(c.input)}: ${c.reason} @${c.offset}`, () => {
      assert.throws(
        () => expandWord(c.input, vars(c.env), c.escape),
        (err: unknown) => {
          assert.ok(err instanceof ExpansionError);
          assert.equal(err.reason, c.reason);
          assert.equal(err.offset, c.offset);
          return true;
        },
      );
    });
  }

  test('message, code and class follow BuildKit and tsbuild conventions', () => {
    let err: unknown;
    try {
      expandWord('a\t${B:?need B}', vars());
    } catch (caught) {
      err = caught;
    }
    assert.ok(err instanceof ExpansionError);
    assert.ok(err instanceof TsbuildError);
    assert.equal(err.code, 'EXPANSION');
    assert.equal(err.name, 'ExpansionError');
    assert.equal(err.message, 'failed to process "a\\t${B:?need B}": B: need B');
  });

  test('expandWords reports the same errors', () => {
    assert.throws(() => expandWords('a ${B', vars()), (err: unknown) => err instanceof ExpansionError && err.offset === 2);
  });
});

describe('lookupFrom', () => {
  test('Map and record distinguish unset from empty', () => {
    for (const lookup of [lookupFrom(new Map([['E', '']])), lookupFrom({ E: '' })]) {
      assert.equal(lookup.get('E'), '');
      assert.equal(lookup.get('MISSING'), undefined);
    }
  });

  test('record lookups ignore inherited properties', () => {
    const lookup = lookupFrom({});
    assert.equal(lookup.get('constructor'), undefined);
    assert.equal(lookup.get('toString'), undefined);
    assert.equal(expandWord('${constructor:-unset}', lookup).value, 'unset');
  });
});
