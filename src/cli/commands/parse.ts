import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { TsbuildError } from '../../errors.js';
import { planBuild } from '../../plan/planner.js';
import { collect, parseBuildArgs } from '../build-args.js';
import { formatPlanJson, formatPlanTable } from '../format-plan.js';

function readDockerfile(path: string): { text: string; name: string } {
  if (path === '-') return { text: readFileSync(0, 'utf8'), name: 'Dockerfile' };
  try {
    return { text: readFileSync(path, 'utf8'), name: path };
  } catch (e) {
    throw new TsbuildError('NO_DOCKERFILE', `cannot read Dockerfile ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
}

export function register(cli: Command): void {
  cli
    .command('parse')
    .description('print the build plan of a Dockerfile without touching disk')
    .option('-f, --file <path>', 'Dockerfile to read (- for stdin)', 'Dockerfile')
    .option('--build-arg <K=V>', 'set a build-time variable (repeatable)', collect, [] as string[])
    .option('--target <stage>', 'stop at this stage')
    .option('--history-style <style>', 'created_by text: classic or buildkit', 'classic')
    .option('--json', 'print the plan as JSON')
    .action((opts: { file: string; buildArg: string[]; target?: string; historyStyle: string; json?: boolean }) => {
      if (opts.historyStyle !== 'classic' && opts.historyStyle !== 'buildkit') throw new TsbuildError('USAGE', `--history-style must be classic or buildkit, not ${opts.historyStyle}`);
      const { text, name } = readDockerfile(opts.file);
      const plan = planBuild(text, {
        file: name,
        buildArgs: parseBuildArgs(opts.buildArg, process.env),
        ...(opts.target !== undefined ? { target: opts.target } : {}),
        historyStyle: opts.historyStyle,
      });
      process.stdout.write(opts.json ? formatPlanJson(plan) : formatPlanTable(plan, process.stdout.columns ?? 120));
      for (const w of opts.json ? plan.warnings : []) process.stderr.write(`warning: ${w.line !== undefined ? `${plan.file}:${w.line}: ` : ''}${w.message}\n`);
    });
}

