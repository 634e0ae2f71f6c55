import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { analyzeImage, checkCi, type CiRules } from '../../analyze/analyze.js';
import { formatAnalysis, formatCi } from '../../analyze/format.js';
import { htmlReport } from '../../analyze/html.js';
import { analyzeOptionsFrom, dockerfileOptions, outputFormat, parseBytes, parseRatio, type DockerfileCliOptions } from '../../analyze/options.js';
import { ImageStore } from '../../store/store.js';
import { defaultRoot } from '../root.js';

interface AnalyzeCliOptions extends DockerfileCliOptions {
  root: string;
  format?: string;
  html?: string;
  ci?: boolean;
  lowestEfficiency?: string;
  highestWastedBytes?: string;
  highestUserWastedPercent?: string;
  paths: string;
}

export function register(cli: Command): void {
  dockerfileOptions(
    cli
      .command('analyze <image>')
      .description("per-layer changes, wasted bytes and efficiency (dive's definitions), wasted paths, and advice: which steps to chain, which COPY to narrow, which chmod/chown to do at COPY time")
      .option('--root <dir>', 'store root', defaultRoot())
      .option('--format <format>', 'text or json (tsbuild.analyze/v1)')
      .option('--html <file>', 'also write a self-contained HTML report')
      .option('--paths <n>', 'wasted paths to list in text output', '20')
      .option('--ci', 'check the rules below and exit 1 when one fails (like dive --ci)')
      .option('--lowest-efficiency <ratio>', 'fail below this efficiency, 0..1 or N% (default 0.9; "disabled")')
      .option('--highest-wasted-bytes <size>', 'fail above this many wasted bytes, e.g. 20MB (default disabled)')
      .option('--highest-user-wasted-percent <ratio>', 'fail above this wasted / user size, 0..1 or N% (default 0.1; "disabled")'),
  ).action(async (ref: string, opts: AnalyzeCliOptions) => {
    const format = outputFormat(opts.format);
    const store = await ImageStore.open(opts.root);
    const analysis = await analyzeImage(store, ref, analyzeOptionsFrom(opts));
    const { json } = analysis;
    if (opts.html !== undefined) await writeFile(opts.html, htmlReport(analysis));
    const ci = opts.ci || opts.lowestEfficiency !== undefined || opts.highestWastedBytes !== undefined || opts.highestUserWastedPercent !== undefined;
    const rules: CiRules = {};
    if (ci) {
      const eff = parseRatio(opts.lowestEfficiency ?? '0.9');
      const wasted = parseBytes(opts.highestWastedBytes ?? 'disabled');
      const user = parseRatio(opts.highestUserWastedPercent ?? '0.1');
      if (eff !== undefined) rules.lowestEfficiency = eff;
      if (wasted !== undefined) rules.highestWastedBytes = wasted;
      if (user !== undefined) rules.highestUserWastedPercent = user;
    }
    const results = ci ? checkCi(json, rules) : [];
    if (format === 'json') process.stdout.write(JSON.stringify(ci ? { ...json, ci: { pass: results.every((r) => r.pass), rules: results } } : json, null, 2) + '\n');
    else process.stdout.write(formatAnalysis(json, { paths: Number(opts.paths) }) + (ci ? '\n' + formatCi(results) : ''));
    if (results.some((r) => !r.pass)) process.exitCode = 1;
  });
}
