/**
 * The e2e corpus (test/e2e/cases): loading cases and staging one as a build
 * context that is the same on every machine (modes normalised, setup.sh run,
 * every mtime set to CONTEXT_MTIME).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, lutimesSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CASES_DIR = fileURLToPath(new URL('../e2e/cases/', import.meta.url));
export const CONTEXT_MTIME = 1_700_000_000;

export interface CaseJson {
  buildArgs?: Record<string, string>;
  target?: string;
  run?: { args: string[]; expect: string };
  covers?: string[];
  requires?: string[];
}

export interface Case {
  name: string;
  dir: string;
  json: CaseJson;
}

/** The cases, or only `only` (plus `always`) when given. */
export function loadCases(only?: string[], always?: string): Case[] {
  const out: Case[] = [];
  for (const name of readdirSync(CASES_DIR).sort()) {
    const dir = join(CASES_DIR, name);
    if (!statSync(dir).isDirectory() || !existsSync(join(dir, 'Dockerfile'))) continue;
    if (only && only.length > 0 && !only.includes(name) && name !== always) continue;
    const jsonPath = join(dir, 'case.json');
    const json = existsSync(jsonPath) ? (JSON.parse(readFileSync(jsonPath, 'utf8')) as CaseJson) : {};
    out.push({ name, dir, json });
  }
  return out;
}

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function walk(dir: string, fn: (path: string) => void): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    fn(p);
    if (lstatSync(p).isDirectory()) walk(p, fn);
  }
}

/** Copies a case into `dest` as a build context (see the header for the rules). */
export function stageContext(c: Case, dest: string): void {
  cpSync(c.dir, dest, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (src) => !(src === join(c.dir, 'case.json') || src === join(c.dir, 'setup.sh')),
  });
  const norm = (p: string): void => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return;
    chmodSync(p, st.isDirectory() ? 0o755 : st.mode & 0o111 ? 0o755 : 0o644);
  };
  chmodSync(dest, 0o755);
  walk(dest, norm);
  const setup = join(c.dir, 'setup.sh');
  if (existsSync(setup)) execFileSync('sh', ['-e', setup], { cwd: dest, stdio: ['ignore', 'pipe', 'pipe'] });
  const t = new Date(CONTEXT_MTIME * 1000);
  walk(dest, (p) => lutimesSync(p, t, t));
  lutimesSync(dest, t, t);
}

