/** One typed instruction per Dockerfile keyword, as parsed (before expansion) or planned (after). */
import type { HealthConfig } from '../image/config.js';
import type { Heredoc } from '../dockerfile/scanner.js';

export interface KeyValue {
  key: string;
  value: string;
}

export type CommandForm = { form: 'exec'; args: string[] } | { form: 'shell'; command: string };

export interface FromInstruction {
  kind: 'FROM';
  image: string;
  platform?: string;
  stageName?: string;
}

export interface RunMount {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  /** Every key=value the mount was given, expanded; flags like `ro` map to 'true'. */
  options: Record<string, string>;
}

export interface RunInstruction {
  kind: 'RUN';
  command: CommandForm;
  /** `--mount` values as written; expanded and checked into `mounts` when planned. */
  mountSpecs: string[];
  mounts: RunMount[];
  network?: 'default' | 'none' | 'host';
  security?: 'sandbox' | 'insecure';
  heredocs: Heredoc[];
  /** A heredoc with a shebang becomes an executable file mounted read-only at `path`. */
  script?: { path: string; content: string };
}

export interface CmdInstruction {
  kind: 'CMD';
  command: CommandForm;
}

export interface EntrypointInstruction {
  kind: 'ENTRYPOINT';
  command: CommandForm;
}

export interface LabelInstruction {
  kind: 'LABEL';
  labels: KeyValue[];
}

export interface MaintainerInstruction {
  kind: 'MAINTAINER';
  name: string;
}

export interface ExposeInstruction {
  kind: 'EXPOSE';
  ports: string[];
}

export interface EnvInstruction {
  kind: 'ENV';
  env: KeyValue[];
  /** Written as `ENV key value` (BuildKit warns: LegacyKeyValueFormat). */
  legacy: boolean;
}

export interface CopyInstruction {
  kind: 'COPY' | 'ADD';
  sources: string[];
  dest: string;
  from?: string;
  chown?: string;
  /** BuildKit style (set by the planner): `--chown=<user>` without a group takes the user's primary group. */
  chownPrimaryGroup?: boolean;
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  /** ADD only. */
  checksum?: string;
  keepGitDir?: boolean;
  unpack?: boolean;
  /** Sources given as heredocs (`COPY <<EOF /dst`). */
  heredocs: Heredoc[];
}

export interface VolumeInstruction {
  kind: 'VOLUME';
  volumes: string[];
}

export interface UserInstruction {
  kind: 'USER';
  user: string;
}

export interface WorkdirInstruction {
  kind: 'WORKDIR';
  path: string;
}

export interface ArgDeclaration {
  key: string;
  /** The default as written; undefined when the ARG has none. */
  value?: string;
}

export interface ArgInstruction {
  kind: 'ARG';
  args: ArgDeclaration[];
}

export interface OnbuildInstruction {
  kind: 'ONBUILD';
  /** The trigger as written after ONBUILD. */
  expression: string;
  trigger: Instruction;
}

export interface StopsignalInstruction {
  kind: 'STOPSIGNAL';
  signal: string;
}

export interface HealthcheckInstruction {
  kind: 'HEALTHCHECK';
  health: HealthConfig;
}

export interface ShellInstruction {
  kind: 'SHELL';
  shell: string[];
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | LabelInstruction
  | MaintainerInstruction
  | ExposeInstruction
  | EnvInstruction
  | CopyInstruction
  | VolumeInstruction
  | UserInstruction
  | WorkdirInstruction
  | ArgInstruction
  | OnbuildInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | ShellInstruction;

export type InstructionKind = Instruction['kind'];
