/** `tsbuild login` / `logout`: check credentials against the registry, then keep them as `docker login` does. */
import { authKey, eraseCredentials, storeCredentials, type Credentials } from './auth.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { RegistryError } from './errors.js';

/** A server as typed (`https://index.docker.io/v1/`, `http://127.0.0.1:5000/`, `quay.io`) → its domain. */
export function loginDomain(server: string | undefined): string {
  if (!server) return 'docker.io';
  const host = server.replace(/^https?:\/\//, '').split('/')[0]!.toLowerCase();
  if (host === '') throw new RegistryError('REGISTRY_CREDENTIALS', `invalid registry ${JSON.stringify(server)}`);
  return host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'docker.io' ? 'docker.io' : host;
}

export interface LoginOptions extends Omit<ClientOptions, 'credentials'> {}

/** Verifies `creds` with the registry (a token for Bearer, `GET /v2/` for Basic) and stores them; returns the config key. */
export async function login(server: string | undefined, creds: Credentials, opts: LoginOptions = {}): Promise<string> {
  const domain = loginDomain(server);
  const client = new RegistryClient(domain, { ...opts, credentials: creds });
  const res = await client.request('GET', '/v2/', { scopes: [] });
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel();
    throw new RegistryError('REGISTRY_AUTH', `login to ${domain} failed: unauthorized: incorrect username or password`, { status: res.status });
  }
  if (!res.ok) await client.fail(res, `login to ${domain} failed`);
  await res.body?.cancel();
  await storeCredentials(domain, creds, opts.dockerConfigDir);
  return authKey(domain);
}

/** Forgets a registry's credentials; false when there were none. */
export async function logout(server: string | undefined, opts: { dockerConfigDir?: string } = {}): Promise<{ key: string; removed: boolean }> {
  const domain = loginDomain(server);
  return { key: authKey(domain), removed: await eraseCredentials(domain, opts.dockerConfigDir) };
}
