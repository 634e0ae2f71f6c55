/** COPY and ADD share their shape; ADD adds URLs, archives, checksums and git sources. */
import type { InstructionNode } from '../dockerfile/node.js';
import { splitWhitespace } from '../dockerfile/forms.js';
import { parseHeredocMarker } from '../dockerfile/heredoc.js';
import type { StepContext, StepOutcome } from '../plan/state.js';
import { fail, flagOffset, flagsOf, jsonArrayOf, type ParseContext } from './common.js';
import type { CopyInstruction } from './types.js';

export const copyFlags = { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' } as const;
export const addFlags = { chown: 'string', chmod: 'string', link: 'bool', exclude: 'strings', checksum: 'string', 'keep-git-dir': 'bool', unpack: 'bool' } as const;

/** Placeholder for the content hash Docker puts in COPY history (`file:…`, `dir:…`, `multi:…`). */
export const CONTENT_HASH = '<content-hash>';

const CHMOD_OCTAL = /^[0-7]{3,4}$/;
const CHMOD_SYMBOLIC = /^([ugoa]*[-+=]([rwxXst]*|[ugo]))(,([ugoa]*[-+=]([rwxXst]*|[ugo])))*$/;

export function parseCopy(node: InstructionNode, ctx: ParseContext, kind: 'COPY' | 'ADD'): CopyInstruction {
  const f = flagsOf(node, ctx, kind === 'COPY' ? copyFlags : addFlags);
  const words = jsonArrayOf(node, ctx) ?? splitWhitespace(node.args);
  if (words.length < 2) {
    fail(node, ctx, `${kind} requires at least two arguments, but only one was provided. Destination could not be determined`);
  }
  const heredocNames = new Set(node.heredocs.map((h) => h.name));
  const sources = words.slice(0, -1);
  const heredocs = node.heredocs.filter((h) => sources.some((s) => parseHeredocMarker(s, node.escape)?.name === h.name));
  const out: CopyInstruction = {
    kind,
    // Heredoc sources are named by their delimiter; their bodies travel in `heredocs`.
    sources: sources.map((s) => {
      const marker = parseHeredocMarker(s, node.escape);
      return marker && heredocNames.has(marker.name) ? marker.name : s;
    }),
    dest: words[words.length - 1]!,
    link: f.bools.get('link') ?? false,
    parents: f.bools.get('parents') ?? false,
    exclude: f.lists.get('exclude') ?? [],
    heredocs,
  };
  for (const key of ['from', 'chown', 'chmod', 'checksum'] as const) {
    const v = f.strings.get(key);
    if (v !== undefined) out[key] = v;
  }
  if (kind === 'ADD') {
    out.keepGitDir = f.bools.get('keep-git-dir') ?? false;
    const unpack = f.bools.get('unpack');
    if (unpack !== undefined) out.unpack = unpack;
  }
  return out;
}

export function planCopy(instr: CopyInstruction, ctx: StepContext): StepOutcome {
  const heredocNames = new Set(instr.heredocs.map((h) => h.name));
  const sources = instr.sources.map((s) => (heredocNames.has(s) ? s : ctx.expand(s)));
  const dest = ctx.expand(instr.dest);
  const planned: CopyInstruction = { ...instr, sources, dest, exclude: instr.exclude.map((e) => ctx.expand(e)) };
  if (instr.chown !== undefined) planned.chown = ctx.expand(instr.chown);
  if (instr.chmod !== undefined) {
    planned.chmod = ctx.expand(instr.chmod);
    if (!CHMOD_OCTAL.test(planned.chmod) && !CHMOD_SYMBOLIC.test(planned.chmod)) ctx.fail(`invalid chmod parameter: ${planned.chmod}`, flagOffset(ctx.node, 'chmod'));
  }
  if (instr.checksum !== undefined) {
    planned.checksum = ctx.expand(instr.checksum);
    if (!/^sha(256|384|512):[0-9a-f]+$/.test(planned.checksum)) ctx.fail(`invalid checksum digest format: ${planned.checksum}`, flagOffset(ctx.node, 'checksum'));
    if (sources.some((s) => !/^https?:\/\//.test(s))) ctx.fail('checksum can\'t be specified for non-HTTP(S) sources', flagOffset(ctx.node, 'checksum'));
  }
  if (instr.from !== undefined) {
    planned.from = ctx.expand(instr.from, flagOffset(ctx.node, 'from'));
    ctx.referenceStage(planned.from, flagOffset(ctx.node, 'from'));
  }
  // Docker's classic text: no space between the --chown spec and the hash, a space at the end.
  const chown = planned.chown !== undefined ? `--chown=${planned.chown}` : '';
  return {
    type: 'copy',
    instruction: planned,
    text: `${instr.kind} ${chown}${CONTENT_HASH} in ${dest} `,
    // BuildKit's text names no flags: `COPY a b /dst # buildkit`.
    buildkitText: `${instr.kind} ${[...sources, dest].join(' ')} # buildkit`,
  };
}

export function parse(node: InstructionNode, ctx: ParseContext): CopyInstruction {
  return parseCopy(node, ctx, 'COPY');
}

export function plan(instr: CopyInstruction, ctx: StepContext): StepOutcome {
  return planCopy(instr, ctx);
}
