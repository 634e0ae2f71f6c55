import type { ContainerConfig } from '../image/config.js';
import type { Instruction } from '../instructions/types.js';

/** What the caller decides about a build; everything else comes from the Dockerfile. */
export interface PlanOptions {
  /** Name shown in error messages (`Dockerfile:3:1: …`). */
  file?: string;
  /** `--build-arg K=V`; a value of undefined means "K given without a value and not in the environment". */
  buildArgs?: Readonly<Record<string, string | undefined>>;
  /** `--target`: a stage name or index; default the last stage. */
  target?: string;
  /** Target platform (TARGET… args); default the build machine's. */
  platform?: Platform;
  /** Build machine platform (BUILD… args); default this host's. */
  buildPlatform?: Platform;
  /** Text style of history `created_by`: Docker's classic builder (default) or BuildKit. */
  historyStyle?: 'classic' | 'buildkit';
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Warning {
  message: string;
  line?: number;
}

export type StageBase =
  | { kind: 'scratch' }
  | { kind: 'image'; ref: string }
  | { kind: 'stage'; index: number };

/** One instruction after expansion, with what it does to the config and the filesystem. */
export interface PlannedStep {
  /** 1-based line of the keyword, and of the last line the instruction (heredocs included) spans. */
  line: number;
  endLine: number;
  /** The instruction as written, continuations joined (what `docker build` prints as `Step N/M : …`). */
  text: string;
  instruction: Instruction;
  /** Docker's container_config.Cmd for this step (classic builder), the cache key's core. */
  cacheCmd: string[];
  /** History `created_by`; for COPY/ADD it holds `<content-hash>` until the sources are hashed. */
  createdBy: string;
  /** true: metadata only. 'if-unchanged': a RUN, empty only if it changed nothing. false: a layer. */
  emptyLayer: boolean | 'if-unchanged';
  /** Build args visible to a RUN (name=value), not persisted in the image. */
  runArgs?: string[];
  /** The history entry's `comment` (BuildKit style: `buildkit.dockerfile.v0`). */
  historyComment?: string;
  /** No history entry at all: BuildKit records none for ONBUILD. */
  noHistory?: boolean;
  /** Config fields this instruction changed, with their new values (the config after it = the previous one + these). */
  configChanges?: Partial<ContainerConfig>;
}

export interface PlannedStage {
  index: number;
  name?: string;
  line: number;
  /** The FROM line as written. */
  fromText: string;
  base: StageBase;
  platform?: string;
  steps: PlannedStep[];
  /** The config the stage starts from: the base's, with a default PATH and its ONBUILD triggers consumed. */
  initialConfig: ContainerConfig;
  /** The stage image's config after its last instruction. */
  config: ContainerConfig;
  /** MAINTAINER's value: the image's top-level `author`. */
  author?: string;
  /** Stages this one reads from (FROM <stage>, COPY --from, RUN --mount from=). */
  dependsOn: number[];
}

export interface Plan {
  file: string;
  directives: Record<string, string>;
  escape: '\\' | '`';
  stages: PlannedStage[];
  /** Index of the stage `--target` names (default: the last). */
  target: number;
  /** Stage indexes the target needs, dependencies first; the only ones a build runs. */
  buildOrder: number[];
  warnings: Warning[];
}
