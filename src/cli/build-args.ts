/** `--build-arg K=V` / `--build-arg K` (value from the environment, like docker). */
export function parseBuildArgs(values: readonly string[], env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq < 0) out[v] = env[v];
    else out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
