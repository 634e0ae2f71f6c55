/** What an instruction sees and changes while a stage is planned. */
import type { ContainerConfig } from '../image/config.js';
import type { InstructionNode } from '../dockerfile/node.js';
import type { Instruction } from '../instructions/types.js';

export interface StageState {
  config: ContainerConfig;
  /** MAINTAINER sets the image's top-level author. */
  author?: string;
  /** ARGs declared in this stage: name → value (undefined: declared, no value). */
  args: Map<string, string | undefined>;
  /** CMD was set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
  index: number;
}

/** The step an instruction asks for; the planner turns it into history text and a cache key. */
export type StepOutcome =
  /** Config only: Cmd `[shell…, "#(nop) ", text]`, an empty_layer entry. */
  | { type: 'metadata'; instruction: Instruction; text: string; buildkitText?: string }
  /** WORKDIR: Cmd `[shell…, "#(nop) WORKDIR /p"]`, a layer only if it created the directory. */
  | { type: 'workdir'; instruction: Instruction; text: string }
  /** COPY/ADD: Cmd `[shell…, "#(nop) <text>"]`, always a layer. */
  | { type: 'copy'; instruction: Instruction; text: string; buildkitText: string }
  /** RUN: the command as run; a layer unless it changed nothing. */
  | { type: 'run'; instruction: Instruction; cmd: string[] };

export interface StepContext {
  node: InstructionNode;
  state: StageState;
  /** BuildKit's ProcessWord with the stage's ENV and ARG values; `offset` places errors (default: where the word stands). */
  expand(word: string, offset?: number): string;
  /** BuildKit's ProcessWords (expansion, then split into words). */
  expandWords(text: string, offset?: number): string[];
  /** A DockerfileError at `offset` in the instruction's text (default: its arguments). */
  fail(message: string, offset?: number): never;
  warn(message: string): void;
  /** The stage `--from`/`from=` names, if it is one; records the dependency. */
  referenceStage(nameOrIndex: string, offset?: number): number | undefined;
  /** Build args given on the command line (K → V; undefined = no value). */
  buildArgs: ReadonlyMap<string, string | undefined>;
  /** Values of the global ARGs declared before the first FROM. */
  metaArgs: ReadonlyMap<string, string | undefined>;
  /** Automatic platform args (TARGETPLATFORM, BUILDARCH, …). */
  platformArgs: ReadonlyMap<string, string>;
  markBuildArgUsed(name: string): void;
  /** The default shell: config.Shell or ["/bin/sh", "-c"]. */
  shell(): string[];
}
