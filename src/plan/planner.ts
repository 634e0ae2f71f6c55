/**
 * The pure planner: folds the parsed Dockerfile into stages, each with its
 * image config after every instruction, the history text the classic builder
 * (or BuildKit) would write, and the steps that touch the filesystem.
 */
import { TsbuildError } from '../errors.js';
import { emptyContainerConfig, type ContainerConfig } from '../image/config.js';
import { nodeError, toNode } from '../dockerfile/node.js';
import { ExpansionError, expandWord, expandWords, type VariableLookup } from '../dockerfile/expand.js';
import { editDistance, parseInstruction, planInstruction } from '../instructions/index.js';
import { flagOffset, wordOffset } from '../instructions/common.js';
import { parseReference } from '../image/reference.js';
import { resolveArg } from '../instructions/arg.js';
import { parseDockerfile, type ParsedDockerfile, type ParsedInstruction } from './parse.js';
import { PROXY_ARGS, formatPlatform, hostPlatform, parsePlatform, platformArgs } from './platform.js';
import type { StageState, StepContext, StepOutcome } from './state.js';
import type { Plan, PlanOptions, PlannedStage, PlannedStep, StageBase, Warning } from './types.js';

const DEFAULT_SHELL = ['/bin/sh', '-c'];
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A base image's ONBUILD expressions parsed as instructions, reported at the FROM line. */
function triggerInstructions(expressions: string[], fromItem: ParsedInstruction, parsed: ParsedDockerfile, ctx: { file: string; sourceLines: readonly string[] }): ParsedInstruction[] {
  return expressions.map((expression) => {
    const from = fromItem.node;
    const logical = { ...from.logical, text: expression, heredocs: [], pieces: [{ offset: 0, line: from.range.start.line, column: from.range.start.column }] };
    const node = toNode(logical, parsed.escape);
    return { node, instruction: parseInstruction(node, ctx) };
  });
}

/** Looks up base-image configs; plans made without a store see empty ones. */
export type ImageConfigResolver = (ref: string) => ContainerConfig | undefined;

export interface PlannerOptions extends PlanOptions {
  resolveImage?: ImageConfigResolver;
}

function envMap(env: readonly string[] | null): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env ?? []) {
    const eq = e.indexOf('=');
    m.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
  }
  return m;
}

function cloneConfig(c: ContainerConfig): ContainerConfig {
  return structuredClone(c);
}

/** ENV wins over an ARG of the same name, in expansion as in RUN's environment. */
function stageLookup(state: StageState): VariableLookup {
  const env = envMap(state.config.Env);
  return {
    get: (name) => (env.has(name) ? env.get(name) : state.args.get(name)),
  };
}

export function planBuild(source: string, options: PlannerOptions = {}): Plan {
  const parsed = parseDockerfile(source, options.file ?? 'Dockerfile');
  return planParsed(parsed, options);
}

export function planParsed(parsed: ParsedDockerfile, options: PlannerOptions = {}): Plan {
  const file = parsed.file;
  const ctxBase = { file, sourceLines: parsed.sourceLines };
  const warnings: Warning[] = parsed.warnings.map((w) => ({ ...w }));
  const buildArgs = new Map(Object.entries(options.buildArgs ?? {}));
  const usedBuildArgs = new Set<string>();
  const host = options.buildPlatform ?? hostPlatform();
  const target = options.platform ?? host;
  const autoArgs = platformArgs(host, target);
  const style = options.historyStyle ?? 'classic';

  /** An expansion error points into the word when we know where the word stands. */
  const expansionFailure = (item: ParsedInstruction, e: unknown, word?: string, at?: number): never => {
    if (e instanceof ExpansionError) {
      const offset = at ?? (word === undefined ? item.node.argsOffset : wordOffset(item.node, word) + e.offset);
      throw nodeError(item.node, ctxBase, e.message, offset, { cause: e });
    }
    throw e;
  };

  // Global ARGs: usable in FROM lines, and as defaults for ARGs re-declared in a stage.
  const metaArgs = new Map<string, string | undefined>();
  const metaLookup: VariableLookup = { get: (n) => (metaArgs.has(n) ? metaArgs.get(n) : autoArgs.get(n)) };
  const markUsed = (name: string): void => void usedBuildArgs.add(name);
  for (const item of parsed.metaArgs) {
    for (const decl of item.instruction.args) {
      try {
        const key = expandWord(decl.key, metaLookup, parsed.escape).value;
        const def = decl.value === undefined ? undefined : expandWord(decl.value, metaLookup, parsed.escape).value;
        metaArgs.set(key, resolveArg({ key }, { buildArgs, metaArgs: new Map(), platformArgs: autoArgs, markBuildArgUsed: markUsed }, def));
      } catch (e) {
        expansionFailure(item, e, decl.value ?? decl.key);
      }
    }
  }

  const stageNames = new Map<string, number>();
  parsed.stages.forEach((s, i) => {
    const name = s.from.instruction.stageName;
    if (name === undefined) return;
    const node = s.from.node;
    if (stageNames.has(name)) throw nodeError(node, ctxBase, `duplicate stage name "${name}"`, node.original.toLowerCase().lastIndexOf(name));
    stageNames.set(name, i);
  });
  const stageLabel = (i: number): string => parsed.stages[i]?.from.instruction.stageName ?? `stage-${i}`;

  const stages: PlannedStage[] = [];
  parsed.stages.forEach((parsedStage, index) => {
    const fromItem = parsedStage.from;
    const from = fromItem.instruction;
    let image: string;
    let platform: string | undefined;
    const imageOffset = wordOffset(fromItem.node, from.image);
    const platformOffset = flagOffset(fromItem.node, 'platform');
    try {
      image = expandWord(from.image, metaLookup, parsed.escape).value;
    } catch (e) {
      return expansionFailure(fromItem, e, from.image);
    }
    try {
      if (from.platform !== undefined) platform = expandWord(from.platform, metaLookup, parsed.escape).value;
    } catch (e) {
      return expansionFailure(fromItem, e, undefined, platformOffset);
    }
    if (image === '') throw nodeError(fromItem.node, ctxBase, `base name (${from.image}) should not be blank`, imageOffset);
    if (platform !== undefined) {
      const p = parsePlatform(platform);
      if (typeof p === 'string') throw nodeError(fromItem.node, ctxBase, `failed to parse platform ${platform}: ${p}`, platformOffset);
      platform = formatPlatform(p);
    }
    // FROM names a stage only when that stage comes earlier; otherwise it is an image.
    const baseStage = stageNames.get(image.toLowerCase());
    let base: StageBase;
    let config: ContainerConfig;
    if (image.toLowerCase() === 'scratch') {
      base = { kind: 'scratch' };
      config = emptyContainerConfig();
    } else if (baseStage !== undefined && baseStage < index) {
      base = { kind: 'stage', index: baseStage };
      config = cloneConfig(stages[baseStage]!.config);
    } else {
      try {
        parseReference(image);
      } catch {
        throw nodeError(fromItem.node, ctxBase, `failed to parse stage name "${image}": invalid reference format`, imageOffset);
      }
      base = { kind: 'image', ref: image };
      const resolved = options.resolveImage?.(image);
      config = resolved ? cloneConfig(resolved) : emptyContainerConfig();
    }
    config.Image = '';
    // The base's ONBUILD triggers run first in this stage, and are consumed by it.
    const triggers = triggerInstructions(config.OnBuild ?? [], fromItem, parsed, ctxBase);
    config.OnBuild = null;
    // Both Docker builders give every image a PATH when its base has none.
    if (!envMap(config.Env).has('PATH')) config.Env = [...(config.Env ?? []), `PATH=${DEFAULT_PATH}`];

    const stage: PlannedStage = {
      index,
      line: fromItem.node.range.start.line,
      fromText: fromItem.node.original,
      base,
      steps: [],
      initialConfig: structuredClone(config),
      config,
      dependsOn: base.kind === 'stage' ? [base.index] : [],
    };
    if (from.stageName !== undefined) stage.name = from.stageName;
    if (platform !== undefined) stage.platform = platform;
    const state: StageState = { config, args: new Map(), cmdSet: false, index };

    for (const item of [...triggers, ...parsedStage.body]) {
      const node = item.node;
      const fail = (message: string, offset = node.argsOffset): never => {
        throw nodeError(node, ctxBase, message, offset);
      };
      const lookup = (): VariableLookup => stageLookup(state);
      const ctx: StepContext = {
        node,
        state,
        expand: (word, at) => {
          try {
            return expandWord(word, lookup(), parsed.escape).value;
          } catch (e) {
            return expansionFailure(item, e, word, at);
          }
        },
        expandWords: (text, at) => {
          try {
            return expandWords(text, lookup(), parsed.escape).words;
          } catch (e) {
            return expansionFailure(item, e, text, at);
          }
        },
        fail,
        warn: (message) => void warnings.push({ message, line: node.range.start.line }),
        referenceStage: (ref, at) => {
          const target = resolveStageRef(ref, index, stageNames, parsed.stages.length, stageLabel, (m) => fail(m, at));
          if (target !== undefined && !stage.dependsOn.includes(target)) stage.dependsOn.push(target);
          return target;
        },
        buildArgs,
        metaArgs,
        platformArgs: autoArgs,
        markBuildArgUsed: markUsed,
        shell: () => [...(state.config.Shell ?? DEFAULT_SHELL)],
      };
      const before = structuredClone(state.config);
      const outcome = planInstruction(item.instruction, ctx);
      // BuildKit marks every CMD's args as escaped (a Windows legacy it keeps for Docker's image spec).
      if (style === 'buildkit' && item.instruction.kind === 'CMD') state.config.ArgsEscaped = true;
      const step = toStep(item, outcome, state, ctx, style, buildArgs, markUsed);
      if (style === 'buildkit') {
        buildkitHistory(step);
        buildkitSemantics(step);
      }
      const changes = configChanges(before, state.config);
      if (changes) step.configChanges = changes;
      stage.steps.push(step);
    }
    stage.config = state.config;
    if (state.author !== undefined) stage.author = state.author;
    stages.push(stage);
  });

  const targetIndex = findTarget(options.target, stageNames, stages.length);
  const buildOrder = orderStages(stages, targetIndex, parsed, ctxBase);

  const unused = [...buildArgs.keys()].filter((k) => !usedBuildArgs.has(k) && !PROXY_ARGS.has(k) && !autoArgs.has(k) && k !== 'SOURCE_DATE_EPOCH');
  if (unused.length > 0) warnings.push({ message: `One or more build-args [${unused.sort().join(' ')}] were not consumed` });

  return {
    file,
    directives: Object.fromEntries(parsed.directives.map((d) => [d.name, d.value])),
    escape: parsed.escape,
    stages,
    target: targetIndex,
    buildOrder,
    warnings,
  };
}

/**
 * `--from` / `from=`: a stage name (case-insensitive) or index, which must come
 * before the current stage, as current BuildKit requires; a name that is no
 * stage is an image, unless it looks like a typo of a stage name.
 */
function resolveStageRef(ref: string, current: number, names: Map<string, number>, count: number, label: (i: number) => string, fail: (m: string) => never): number | undefined {
  let target = names.get(ref.toLowerCase());
  if (target === undefined && /^\d+$/.test(ref)) {
    target = Number(ref);
    if (target >= count) fail(`invalid stage index ${ref}`);
  }
  if (target === undefined) {
    const near = /^[a-z0-9][a-z0-9_.-]*$/i.test(ref) ? [...names.keys()].find((n) => editDistance(n, ref.toLowerCase()) <= 2) : undefined;
    if (near !== undefined) fail(`stage "${ref}" not found (did you mean "${near}"? a name that is not a stage is pulled as an image)`);
    return undefined;
  }
  if (target === current) fail(`circular dependency detected on stage: ${label(current)}`);
  if (target > current) fail(`cannot copy from stage "${label(target)}", it needs to be defined before current stage "${label(current)}"`);
  return target;
}

function findTarget(target: string | undefined, names: Map<string, number>, count: number): number {
  if (target === undefined || target === '') return count - 1;
  const byName = names.get(target.toLowerCase());
  if (byName !== undefined) return byName;
  throw new TsbuildError('TARGET', `target stage "${target}" could not be found`);
}

/** Dependencies first, each stage once; a cycle anywhere is an error on the stage that closes it. */
function orderStages(stages: PlannedStage[], target: number, parsed: ParsedDockerfile, ctx: { file: string; sourceLines: readonly string[] }): number[] {
  const walk = (roots: number[]): number[] => {
    const order: number[] = [];
    const state = new Map<number, 'visiting' | 'done'>();
    const visit = (i: number): void => {
      if (state.get(i) === 'done') return;
      if (state.get(i) === 'visiting') {
        throw nodeError(parsed.stages[i]!.from.node, ctx, `circular dependency detected on stage: ${stages[i]!.name ?? i}`);
      }
      state.set(i, 'visiting');
      for (const d of stages[i]!.dependsOn) visit(d);
      state.set(i, 'done');
      order.push(i);
    };
    roots.forEach(visit);
    return order;
  };
  walk(stages.map((s) => s.index));
  return walk([target]);
}

function configChanges(before: ContainerConfig, after: ContainerConfig): Partial<ContainerConfig> | undefined {
  const changes: Record<string, unknown> = {};
  for (const key of Object.keys(after) as (keyof ContainerConfig)[]) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) changes[key] = after[key];
  }
  return Object.keys(changes).length > 0 ? (changes as Partial<ContainerConfig>) : undefined;
}

/** The build args a RUN sees: declared ARGs with a value, not shadowed by ENV, plus given proxy args. */
function runArgsOf(state: StageState, buildArgs: ReadonlyMap<string, string | undefined>, markUsed: (n: string) => void): { env: string[]; history: string[] } {
  const env = envMap(state.config.Env);
  const history: string[] = [];
  for (const [k, v] of state.args) if (v !== undefined && !env.has(k)) history.push(`${k}=${v}`);
  const proxies: string[] = [];
  for (const [k, v] of buildArgs) {
    if (PROXY_ARGS.has(k) && v !== undefined && !state.args.has(k) && !env.has(k)) {
      markUsed(k);
      proxies.push(`${k}=${v}`);
    }
  }
  history.sort();
  return { env: [...history, ...proxies].sort(), history };
}

/** BuildKit's dockerfile frontend comments every entry it commits, and commits none for ONBUILD. */
export const BUILDKIT_HISTORY_COMMENT = 'buildkit.dockerfile.v0';

function buildkitHistory(step: PlannedStep): void {
  if (step.instruction.kind === 'ONBUILD') step.noHistory = true;
  else step.historyComment = BUILDKIT_HISTORY_COMMENT;
}

/** BuildKit's file semantics where they differ from the classic builder's. */
function buildkitSemantics(step: PlannedStep): void {
  const i = step.instruction;
  if ((i.kind === 'COPY' || i.kind === 'ADD') && i.chown !== undefined && !i.chown.includes(':')) i.chownPrimaryGroup = true;
}

/**
 * BuildKit's RUN history prefix (dockerfile2llb runCommandString): every ARG the
 * stage declared, in declaration order, valued from ENV when ENV has the name,
 * else the ARG's value, empty when it has none. The classic builder instead sorts
 * and keeps only ARGs with a value not shadowed by ENV.
 */
function buildkitRunArgs(state: StageState): string[] {
  const env = envMap(state.config.Env);
  return [...state.args].map(([k, v]) => `${k}=${env.has(k) ? env.get(k) : (v ?? '')}`);
}

function toStep(item: ParsedInstruction, outcome: StepOutcome, state: StageState, ctx: StepContext, style: 'classic' | 'buildkit', buildArgs: ReadonlyMap<string, string | undefined>, markUsed: (n: string) => void): PlannedStep {
  const shell = ctx.shell();
  const base = { line: item.node.range.start.line, endLine: item.node.logical.endLine, text: item.node.original, instruction: outcome.instruction };
  switch (outcome.type) {
    case 'metadata': {
      const cacheCmd = [...shell, '#(nop) ', outcome.text];
      return { ...base, cacheCmd, createdBy: style === 'classic' ? cacheCmd.join(' ') : outcome.buildkitText ?? outcome.text, emptyLayer: true };
    }
    case 'workdir': {
      const cacheCmd = [...shell, `#(nop) ${outcome.text}`];
      // BuildKit commits a layer for every WORKDIR but `/`, empty if the dir existed.
      const emptyLayer = style === 'classic' ? 'if-unchanged' : outcome.text === 'WORKDIR /';
      return { ...base, cacheCmd, createdBy: style === 'classic' ? cacheCmd.join(' ') : outcome.text, emptyLayer };
    }
    case 'copy': {
      const cacheCmd = [...shell, `#(nop) ${outcome.text}`];
      return { ...base, cacheCmd, createdBy: style === 'classic' ? cacheCmd.join(' ') : outcome.buildkitText, emptyLayer: false };
    }
    case 'run': {
      const args = runArgsOf(state, buildArgs, markUsed);
      const prefix = args.history.length > 0 ? [`|${args.history.length}`, ...args.history] : [];
      const cacheCmd = [...prefix, ...outcome.cmd];
      const bkArgs = buildkitRunArgs(state);
      const bkPrefix = bkArgs.length > 0 ? [`|${bkArgs.length}`, ...bkArgs] : [];
      const step: PlannedStep = {
        ...base,
        cacheCmd,
        createdBy: style === 'classic' ? cacheCmd.join(' ') : `RUN ${[...bkPrefix, ...outcome.cmd].join(' ')} # buildkit`,
        // BuildKit commits a layer for every RUN, the empty one if nothing changed.
        emptyLayer: style === 'classic' ? 'if-unchanged' : false,
      };
      if (args.env.length > 0) step.runArgs = args.env;
      return step;
    }
  }
}
