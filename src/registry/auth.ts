/**
 * Credentials and challenges, as the Docker CLI and daemon handle them:
 * - `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`): `auths` entries
 *   (`auth` = base64 "user:pass", or `username`/`password`, `identitytoken`,
 *   `registrytoken`), `credHelpers` per registry and `credsStore` for all, which
 *   run `docker-credential-<name> get|store|erase` with JSON on stdin/stdout;
 * - Docker Hub's key is `https://index.docker.io/v1/`, other registries' the
 *   host[:port] (entries written with a scheme or a path are matched by host);
 * - `WWW-Authenticate` challenges: `Basic realm=…` and
 *   `Bearer realm=…,service=…,scope=…[,error=…]`.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { goJson } from '../image/gojson.js';
import { writeFileAtomic } from '../store/fsutil.js';
import { RegistryError } from './errors.js';

/** The key Docker uses for Docker Hub in config.json and with credential helpers. */
export const HUB_AUTH_KEY = 'https://index.docker.io/v1/';

export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth refresh token (the helper's Username is then `<token>`). */
  identityToken?: string;
  /** A bearer token sent as is. */
  registryToken?: string;
}

export function hasCredentials(c: Credentials | undefined): c is Credentials {
  return !!c && !!(c.username || c.password || c.identityToken || c.registryToken);
}

/** The config.json key of a registry domain (`docker.io` → Hub's v1 URL). */
export function authKey(domain: string): string {
  return domain === 'docker.io' || domain === 'index.docker.io' || domain === 'registry-1.docker.io' ? HUB_AUTH_KEY : domain;
}

/** docker/cli ConvertToHostname: strips a scheme and any path. */
function hostOf(key: string): string {
  let s = key;
  if (s.startsWith('http://')) s = s.slice(7);
  else if (s.startsWith('https://')) s = s.slice(8);
  return s.split('/')[0] ?? s;
}

export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['DOCKER_CONFIG'] || join(homedir(), '.docker');
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  email?: string;
}

type ConfigFile = Record<string, unknown> & { auths?: Record<string, AuthEntry>; credsStore?: string; credHelpers?: Record<string, string> };

async function readConfig(dir: string): Promise<ConfigFile> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new RegistryError('REGISTRY_CREDENTIALS', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (text.trim() === '') return {};
  try {
    const doc = JSON.parse(text) as unknown;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a JSON object');
    return doc as ConfigFile;
  } catch (e) {
    throw new RegistryError('REGISTRY_CREDENTIALS', `${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

function entryCredentials(e: AuthEntry, where: string): Credentials {
  const c: Credentials = {};
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new RegistryError('REGISTRY_CREDENTIALS', `invalid auth configuration for ${where}: "auth" is not base64 of user:password`);
    c.username = decoded.slice(0, colon);
    c.password = decoded.slice(colon + 1);
  } else {
    if (e.username) c.username = e.username;
    if (e.password) c.password = e.password;
  }
  if (e.identitytoken) c.identityToken = e.identitytoken;
  if (e.registrytoken) c.registryToken = e.registrytoken;
  return c;
}

/** Runs `docker-credential-<helper> <action>` with `input` on stdin. */
function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [action], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      const msg = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `${bin} not found in PATH (named by config.json)` : `${bin}: ${e.message}`;
      reject(new RegistryError('REGISTRY_CREDENTIALS', msg, { cause: e }));
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

function helperFor(config: ConfigFile, key: string): string | undefined {
  const helpers = config.credHelpers ?? {};
  for (const [k, v] of Object.entries(helpers)) if (k === key || hostOf(k) === hostOf(key)) return v;
  return config.credsStore || undefined;
}

async function helperGet(helper: string, key: string): Promise<Credentials | undefined> {
  const r = await runHelper(helper, 'get', key);
  const text = (r.stdout.trim() || r.stderr.trim());
  if (r.code !== 0) {
    if (/credentials not found/i.test(text)) return undefined;
    throw new RegistryError('REGISTRY_CREDENTIALS', `error getting credentials from docker-credential-${helper}: ${text || `exit code ${r.code}`}`);
  }
  let doc: { Username?: string; Secret?: string };
  try {
    doc = JSON.parse(r.stdout) as { Username?: string; Secret?: string };
  } catch (e) {
    throw new RegistryError('REGISTRY_CREDENTIALS', `docker-credential-${helper} get printed no JSON`, { cause: e });
  }
  if (!doc.Username && !doc.Secret) return undefined;
  if (doc.Username === '<token>') return doc.Secret ? { identityToken: doc.Secret } : undefined;
  return { ...(doc.Username ? { username: doc.Username } : {}), ...(doc.Secret ? { password: doc.Secret } : {}) };
}

/** Credentials for a registry domain, from config.json or its credential helper; undefined when none. */
export async function lookupCredentials(domain: string, configDir: string = dockerConfigDir()): Promise<Credentials | undefined> {
  const config = await readConfig(configDir);
  const key = authKey(domain);
  const helper = helperFor(config, key);
  if (helper) {
    const fromHelper = await helperGet(helper, key);
    if (fromHelper) return fromHelper;
  }
  const auths = config.auths ?? {};
  const exact = auths[key];
  if (exact) return entryCredentials(exact, key);
  for (const [k, e] of Object.entries(auths)) if (hostOf(k) === hostOf(key)) return entryCredentials(e, k);
  return undefined;
}

/** Saves credentials as `docker login` does: through the helper when one is configured, else in `auths`. */
export async function storeCredentials(domain: string, c: Credentials, configDir: string = dockerConfigDir()): Promise<string> {
  const config = await readConfig(configDir);
  const key = authKey(domain);
  const helper = helperFor(config, key);
  const auths = { ...(config.auths ?? {}) };
  if (helper) {
    const secret = c.identityToken ?? c.password ?? '';
    const username = c.identityToken ? '<token>' : (c.username ?? '');
    const r = await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: username, Secret: secret }));
    if (r.code !== 0) throw new RegistryError('REGISTRY_CREDENTIALS', `error saving credentials: docker-credential-${helper}: ${(r.stdout + r.stderr).trim()}`);
    auths[key] = {};
  } else {
    const e: AuthEntry = {};
    if (c.identityToken) e.identitytoken = c.identityToken;
    else e.auth = Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64');
    auths[key] = e;
  }
  await writeConfig(configDir, { ...config, auths });
  return key;
}

/** Forgets a registry's credentials; false when there were none. */
export async function eraseCredentials(domain: string, configDir: string = dockerConfigDir()): Promise<boolean> {
  const config = await readConfig(configDir);
  const key = authKey(domain);
  const helper = helperFor(config, key);
  let found = false;
  if (helper) {
    const r = await runHelper(helper, 'erase', key);
    if (r.code === 0) found = true;
  }
  const auths = { ...(config.auths ?? {}) };
  for (const k of Object.keys(auths)) {
    if (k === key || hostOf(k) === hostOf(key)) {
      delete auths[k];
      found = true;
    }
  }
  if (found) await writeConfig(configDir, { ...config, auths });
  return found;
}

async function writeConfig(dir: string, config: ConfigFile): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config, null, '\t') + '\n', 0o600);
}

// ---------------------------------------------------------------------------------------------
// Challenges

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses a WWW-Authenticate value (RFC 7235: several challenges, quoted-string params). */
export function parseChallenges(header: string | null): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  const skipSpace = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  while (i < s.length) {
    skipSpace();
    while (s[i] === ',') {
      i++;
      skipSpace();
    }
    const scheme = token();
    if (!scheme) break;
    const c: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(c);
    for (;;) {
      skipSpace();
      const save = i;
      const name = token();
      skipSpace();
      if (!name || s[i] !== '=') {
        i = save;
        break;
      }
      i++;
      skipSpace();
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < s.length && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
        value = s.slice(start, i);
      }
      c.params[name.toLowerCase()] = value;
      skipSpace();
      if (s[i] === ',') {
        i++;
        continue;
      }
      break;
    }
  }
  return out;
}

/** moby's ComputeV2MetadataHMACKey: sha256 digest string of the credentials' JSON (omitempty). */
export function metadataHmacKey(c: Credentials | undefined): Buffer {
  const doc: Record<string, string> = {};
  if (c?.username) doc['username'] = c.username;
  if (c?.password) doc['password'] = c.password;
  if (c?.identityToken) doc['identitytoken'] = c.identityToken;
  if (c?.registryToken) doc['registrytoken'] = c.registryToken;
  return Buffer.from(`sha256:${createHash('sha256').update(goJson(doc)).digest('hex')}`);
}
