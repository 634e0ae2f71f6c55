// The front end must never hang or crash on arbitrary input: every outcome is a
// plan or a TsbuildError. Inputs are random bytes and mutations of real Dockerfiles,
// from a fixed seed so a failure reproduces (FUZZ_SEED, FUZZ_RUNS to explore more).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planBuild } from '../../src/plan/planner.js';
import { TsbuildError } from '../../src/errors.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEEDS = [
  '# escape=`\nARG B=alpine\nFROM ${B:-x} AS a\nRUN <<EOF cat\nhi\nEOF\nCOPY --from=a --chown=1:1 a b /c/\n',
  'FROM a\nENV A=1 B="x y" \\\n  C=${A:+set}\nLABEL "k"="v w"\nHEALTHCHECK --interval=1s CMD ["x"]\nONBUILD RUN x\n',
  'FROM a\nRUN --mount=type=cache,target=/c --network=none ["sh","-c","echo"]\nEXPOSE 80/tcp 1-3\nSHELL ["/bin/sh","-c"]\nWORKDIR ${X#*/}\n',
];
const ALPHABET = ['\n', ' ', '\\', '`', '$', '{', '}', '"', "'", '[', ']', '<<', '-', '=', '#', 'FROM ', 'RUN ', 'COPY ', 'ARG ', '--', ':', '\t', '\r', '%', '/', 'EOF', 'ONBUILD ', '\u00e9', '\0'];

function mutate(src: string, r: () => number): string {
  let s = src;
  const edits = 1 + Math.floor(r() * 3);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(r() * (s.length + 1));
    const op = r();
    if (op < 0.4) s = s.slice(0, at) + ALPHABET[Math.floor(r() * ALPHABET.length)]! + s.slice(at);
    else if (op < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 5));
    else {
      // Duplicate a whole line somewhere else: keeps the text mostly valid.
      const lines = s.split('\n');
      lines.splice(Math.floor(r() * lines.length), 0, lines[Math.floor(r() * lines.length)]!);
      s = lines.join('\n');
    }
  }
  return s;
}

function randomBytes(r: () => number): string {
  const n = Math.floor(r() * 200);
  let s = '';
  for (let i = 0; i < n; i++) s += r() < 0.5 ? ALPHABET[Math.floor(r() * ALPHABET.length)]! : String.fromCharCode(Math.floor(r() * 256));
  return s;
}

test('random and mutated Dockerfiles give a plan or a TsbuildError, never a crash', () => {
  const seed = Number(process.env['FUZZ_SEED'] ?? 20261123);
  const runs = Number(process.env['FUZZ_RUNS'] ?? 3000);
  const r = rng(seed);
  let plans = 0;
  for (let i = 0; i < runs; i++) {
    const input = i % 4 === 0 ? randomBytes(r) : mutate(SEEDS[i % SEEDS.length]!, r);
    try {
      planBuild(input, { buildArgs: { A: '1' } });
      plans++;
    } catch (e) {
      assert.ok(e instanceof TsbuildError, `input ${JSON.stringify(input)} threw ${e instanceof Error ? e.stack : String(e)}`);
    }
  }
  assert.ok(plans > runs / 20, `only ${plans} of ${runs} inputs planned: the mutations are too destructive to test much`);
});
