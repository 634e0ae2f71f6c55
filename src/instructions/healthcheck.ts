import type { InstructionNode } from '../dockerfile/node.js';
import type { HealthConfig } from '../image/config.js';
import { goDuration, goQuote, goQuoteRune, goQuoteSlice, parseGoDuration } from '../plan/gofmt.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { atLeastOne, commandFormOf, fail, flagsOf, requireArgs, type ParseContext } from './common.js';
import type { HealthcheckInstruction } from './types.js';

export const flags = { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' } as const;

const DURATION_FIELDS = [
  ['interval', 'Interval'],
  ['timeout', 'Timeout'],
  ['start-period', 'StartPeriod'],
  ['start-interval', 'StartInterval'],
] as const;

const MIN_DURATION = 1e6; // 1ms, Docker's container.MinimumDuration

export function parse(node: InstructionNode, ctx: ParseContext): HealthcheckInstruction {
  const f = flagsOf(node, ctx, flags);
  requireArgs(node, ctx, atLeastOne('HEALTHCHECK'));
  const typeMatch = /^\s*(\S+)\s*/.exec(node.args);
  if (!typeMatch) return fail(node, ctx, atLeastOne('HEALTHCHECK'));
  const type = typeMatch[1]!.toUpperCase();
  const rest = node.args.slice(typeMatch[0].length);
  if (type === 'NONE') {
    if (rest !== '') fail(node, ctx, 'HEALTHCHECK NONE takes no arguments', node.argsOffset + typeMatch[0].length);
    return { kind: 'HEALTHCHECK', health: { Test: ['NONE'] } };
  }
  if (type !== 'CMD') fail(node, ctx, `Unknown type "${typeMatch[1]}" in HEALTHCHECK (try CMD)`, node.argsOffset);
  if (rest.trim() === '') fail(node, ctx, 'Missing command after HEALTHCHECK CMD', node.argsOffset);
  const form = commandFormOf(node, ctx, rest);
  const health: HealthConfig = { Test: form.form === 'exec' ? ['CMD', ...form.args] : ['CMD-SHELL', form.command] };
  for (const [flag, field] of DURATION_FIELDS) {
    const raw = f.strings.get(flag);
    if (raw === undefined || raw === '') continue;
    const nanos = parseGoDuration(raw);
    if (nanos === undefined) fail(node, ctx, `time: invalid duration ${goQuote(raw)}`, f.offsets.get(flag));
    if (nanos !== 0 && nanos < MIN_DURATION) fail(node, ctx, `Interval "${flag}" cannot be less than 1ms`, f.offsets.get(flag));
    if (nanos !== 0) health[field] = nanos;
  }
  const retries = f.strings.get('retries');
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31 - 1) {
      fail(node, ctx, `strconv.ParseInt: parsing ${goQuote(retries)}: invalid syntax`, f.offsets.get('retries'));
    }
    const n = Number(retries);
    if (n < 0) fail(node, ctx, `--retries cannot be negative (${n})`, f.offsets.get('retries'));
    // dockerd 20.10 refuses 0 although current BuildKit reads it as the default.
    if (n === 0) fail(node, ctx, '--retries must be at least 1 (not 0)', f.offsets.get('retries'));
    if (n !== 0) health.Retries = n;
  }
  return { kind: 'HEALTHCHECK', health };
}

/** Docker 20.10 writes `HEALTHCHECK %q` of its HealthConfig struct pointer. */
export function healthText(h: HealthConfig): string {
  const d = (n: number | undefined): string => goQuote(goDuration(n ?? 0));
  return `HEALTHCHECK &{${goQuoteSlice(h.Test)} ${d(h.Interval)} ${d(h.Timeout)} ${d(h.StartPeriod)} ${goQuoteRune(h.Retries ?? 0)}}`;
}

export function plan(instr: HealthcheckInstruction, ctx: StepContext): StepOutcome {
  // dockerd merges the committed config with the parent's: timings and retries the new
  // check leaves unset come from the previous one. The history text shows the check as written.
  const previous = ctx.state.config.Healthcheck;
  const health: HealthConfig = { ...instr.health };
  if (previous) {
    for (const [, field] of DURATION_FIELDS) if (health[field] === undefined && previous[field] !== undefined) health[field] = previous[field];
    if (health.Retries === undefined && previous.Retries !== undefined) health.Retries = previous.Retries;
  }
  ctx.state.config.Healthcheck = health;
  return { type: 'metadata', instruction: { ...instr, health }, text: healthText(instr.health) };
}
