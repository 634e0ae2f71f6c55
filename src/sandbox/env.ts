/**
 * The environment and the generated /etc files of a build container, as dockerd makes them.
 */

/** moby daemon/pkg/oci/defaults.go defaultUnixPathEnv. */
export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * moby pkg ReplaceOrAppendEnvValues: entries of `overrides` replace same-named entries of
 * `defaults`, others are appended (even duplicates among the overrides); a bare `NAME` (no `=`)
 * removes NAME from the defaults.
 */
export function replaceOrAppendEnv(defaults: readonly string[], overrides: readonly string[]): string[] {
  const out: (string | null)[] = [...defaults];
  const index = new Map<string, number>();
  out.forEach((e, i) => {
    const k = (e as string).indexOf('=');
    index.set(k < 0 ? (e as string) : (e as string).slice(0, k), i);
  });
  for (const v of overrides) {
    const k = v.indexOf('=');
    if (k < 0) {
      const i = index.get(v);
      if (i !== undefined) out[i] = null;
      continue;
    }
    const i = index.get(v.slice(0, k));
    if (i !== undefined) out[i] = v;
    else out.push(v);
  }
  return out.filter((e): e is string => e !== null && e !== '');
}

/**
 * The env a RUN process sees under dockerd + runc: PATH (default) and HOSTNAME first
 * (container.CreateDaemonEnvironment), overridden by the config's Env; then runc (1.2
 * prepareEnv) keeps only the last entry of each name, and appends HOME from the user's passwd
 * entry when HOME is unset or empty.
 */
export function dockerRunEnv(configEnv: readonly string[], opts: { hostname: string; home: string }): string[] {
  const merged = replaceOrAppendEnv([`PATH=${DEFAULT_PATH_ENV}`, `HOSTNAME=${opts.hostname}`], configEnv);
  const seen = new Set<string>();
  const out: string[] = [];
  for (let i = merged.length - 1; i >= 0; i--) {
    const kv = merged[i] as string;
    const k = kv.slice(0, kv.indexOf('='));
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(kv);
  }
  out.reverse();
  const home = out.find((e) => e.startsWith('HOME='));
  if (home === undefined || home === 'HOME=') {
    return [...out.filter((e) => e !== 'HOME='), `HOME=${opts.home}`];
  }
  return out;
}

/**
 * libnetwork etchosts defaultContent, `%s\t%s\n` each, as dockerd 20.10 writes it (checked against
 * docker.io 20.10: `fe00::0`, `ff00::0`; newer moby formats them with netip as `fe00::`, `ff00::`).
 */
export const DEFAULT_HOSTS =
  '127.0.0.1\tlocalhost\n' +
  '::1\tlocalhost ip6-localhost ip6-loopback\n' +
  'fe00::0\tip6-localnet\n' +
  'ff00::0\tip6-mcastprefix\n' +
  'ff02::1\tip6-allnodes\n' +
  'ff02::2\tip6-allrouters\n';

/**
 * /etc/hosts for a RUN.
 * - 'host': a copy of the host's file (dockerd, host networking).
 * - 'none': Docker's defaults only (no interface, no record for the hostname).
 * - 'default': Docker's defaults plus a record for the hostname, as on the bridge — with
 *   127.0.1.1 instead of the container's address, since 'default' is the host network here.
 *   FQDN hostnames also get their first label, like libnetwork's makeHostsRecs.
 */
export function hostsFile(network: 'default' | 'host' | 'none', hostname: string, hostHosts: string | undefined): string {
  if (network === 'host') return hostHosts ?? DEFAULT_HOSTS;
  if (network === 'none') return DEFAULT_HOSTS;
  let names = hostname;
  const dot = hostname.indexOf('.');
  if (dot > 0) names += ' ' + hostname.slice(0, dot);
  return `${DEFAULT_HOSTS}127.0.1.1\t${names}\n`;
}

/** /etc/hostname: the name and a newline (dockerd's setupHostnameFile... writes Hostname+"\n"). */
export function hostnameFile(hostname: string): string {
  return hostname + '\n';
}
