import type { InstructionNode } from '../dockerfile/node.js';
import { splitWhitespace } from '../dockerfile/forms.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { atLeastOne, flagsOf, requireArgs, wordOffset, type ParseContext } from './common.js';
import type { ExposeInstruction } from './types.js';

export function parse(node: InstructionNode, ctx: ParseContext): ExposeInstruction {
  flagsOf(node, ctx);
  requireArgs(node, ctx, atLeastOne('EXPOSE'));
  // Docker sorts the words as written, before expanding them; history shows that order.
  return { kind: 'EXPOSE', ports: splitWhitespace(node.args).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))) };
}

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

/** `80`, `80/udp`, `8000-8002/tcp` → `["80/tcp"]…`; an error message when invalid (go-connections' rules). */
export function portKeys(spec: string): string[] | string {
  const slash = spec.lastIndexOf('/');
  const rawPort = slash < 0 ? spec : spec.slice(0, slash);
  const proto = slash < 0 ? 'tcp' : spec.slice(slash + 1).toLowerCase();
  if (!PROTOCOLS.has(proto)) return `invalid proto: ${spec.slice(slash + 1)}`;
  // An `ip:hostPort:containerPort` spec exposes only the container port.
  const containerPort = rawPort.includes(':') ? rawPort.slice(rawPort.lastIndexOf(':') + 1) : rawPort;
  const m = /^(\d+)(?:-(\d+))?$/.exec(containerPort);
  if (!m) return `invalid containerPort: ${containerPort}`;
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start > 65535 || end > 65535) return `invalid containerPort: ${containerPort}`;
  if (end < start) return `invalid range specified for container port: ${containerPort}`;
  const keys: string[] = [];
  for (let p = start; p <= end; p++) keys.push(`${p}/${proto}`);
  return keys;
}

export function plan(instr: ExposeInstruction, ctx: StepContext): StepOutcome {
  const exposed = { ...(ctx.state.config.ExposedPorts ?? {}) };
  const ports: string[] = [];
  for (const raw of instr.ports) {
    for (const p of ctx.expandWords(raw)) {
      const keys = portKeys(p);
      if (typeof keys === 'string') ctx.fail(keys, wordOffset(ctx.node, raw));
      for (const k of keys) exposed[k] = {};
      ports.push(p);
    }
  }
  ctx.state.config.ExposedPorts = exposed;
  const sorted = Object.keys(exposed).sort();
  return {
    type: 'metadata',
    instruction: { ...instr, ports },
    text: `EXPOSE ${ports.join(' ')}`,
    buildkitText: `EXPOSE map[${sorted.map((k) => `${k}:{}`).join(' ')}]`,
  };
}
