/** Human and JSON renderings of a Plan for `tsbuild parse`. */
import type { Plan, PlannedStep } from '../plan/types.js';

function effect(step: PlannedStep): string {
  if (step.emptyLayer === true) return 'config';
  if (step.emptyLayer === 'if-unchanged') return step.instruction.kind === 'RUN' ? 'run → layer' : 'layer if new dir';
  return 'layer';
}

function oneLine(text: string, width: number): string {
  const flat = text.replace(/\n/g, '\\n');
  return flat.length > width ? flat.slice(0, width - 1) + '…' : flat;
}

export function formatPlanTable(plan: Plan, width = 100): string {
  const out: string[] = [];
  const built = new Set(plan.buildOrder);
  for (const stage of plan.stages) {
    const base = stage.base.kind === 'scratch' ? 'scratch' : stage.base.kind === 'stage' ? `stage ${stage.base.index}` : stage.base.ref;
    const tags = [stage.index === plan.target ? 'target' : '', built.has(stage.index) ? '' : 'skipped'].filter((t) => t).join(', ');
    out.push(`Stage ${stage.index}${stage.name ? ` (${stage.name})` : ''} FROM ${base}${stage.platform ? ` --platform=${stage.platform}` : ''}${tags ? `  [${tags}]` : ''}`);
    out.push(`  ${'LINE'.padEnd(5)} ${'INSTR'.padEnd(11)} ${'EFFECT'.padEnd(16)} CREATED BY`);
    for (const step of stage.steps) {
      out.push(`  ${String(step.line).padEnd(5)} ${step.instruction.kind.padEnd(11)} ${effect(step).padEnd(16)} ${oneLine(step.createdBy, width - 36)}`);
    }
    const c = stage.config;
    const facts: string[] = [];
    if (c.Env) facts.push(`Env=${JSON.stringify(c.Env)}`);
    if (c.Entrypoint) facts.push(`Entrypoint=${JSON.stringify(c.Entrypoint)}`);
    if (c.Cmd) facts.push(`Cmd=${JSON.stringify(c.Cmd)}`);
    if (c.WorkingDir) facts.push(`WorkingDir=${c.WorkingDir}`);
    if (c.User) facts.push(`User=${c.User}`);
    if (facts.length > 0) out.push(`  config: ${facts.join(' ')}`);
    out.push('');
  }
  for (const w of plan.warnings) out.push(`warning: ${w.line !== undefined ? `${plan.file}:${w.line}: ` : ''}${w.message}`);
  return out.join('\n').replace(/\n*$/, '\n');
}

export function formatPlanJson(plan: Plan): string {
  return JSON.stringify(plan, (key, value: unknown) => (key === 'heredocs' && Array.isArray(value) && value.length === 0 ? undefined : value), 2) + '\n';
}
