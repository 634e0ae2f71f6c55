/**
 * A distribution API v2 client on Node's fetch (undici): endpoint and scheme
 * choice, Basic and Bearer auth from `WWW-Authenticate`, retries with backoff,
 * and the registry's JSON errors turned into RegistryErrors.
 *
 * - `docker.io` is served by `registry-1.docker.io`; its credentials live under
 *   Hub's v1 URL (auth.ts).
 * - HTTPS first; plain HTTP only for localhost, 127.0.0.0/8 and ::1, or hosts given
 *   as insecure registries (then tried after HTTPS fails, as dockerd does). TLS is
 *   always verified (Node's fetch has no per-request switch; NODE_EXTRA_CA_CERTS
 *   adds a private CA).
 * - Bearer: a token per scope set, fetched from the challenge's realm with
 *   `service`, `scope`… and `account`, with Basic credentials (or, for an identity
 *   token, the OAuth refresh_token POST); a 401 naming other scopes refetches once.
 * - Retries: network errors, 429, 500, 502, 503 and 504, up to `attempts` tries
 *   with exponential backoff (Retry-After honoured, capped).
 */
import { installExtraCaCerts } from '../sys/extra-ca.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { TSBUILD_VERSION } from '../version.js';
import { hasCredentials, lookupCredentials, parseChallenges, type Challenge, type Credentials } from './auth.js';
import { RegistryError, type RegistryErrorCode } from './errors.js';

export interface RetryOptions {
  /** Tries in all (default 4). */
  attempts?: number;
  /** First backoff (default 500 ms); doubles each try. */
  baseDelayMs?: number;
  /** Longest single wait, Retry-After included (default 10 s). */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /** Hosts (`host` or `host:port`) that may be reached over plain HTTP. */
  insecureRegistries?: string[];
  /** Use these instead of looking in config.json / credential helpers. */
  credentials?: Credentials;
  /** Where config.json lives (default `$DOCKER_CONFIG` or `~/.docker`). */
  dockerConfigDir?: string;
  retry?: RetryOptions;
  signal?: AbortSignal;
}

export interface RequestOptions {
  scopes: string[];
  headers?: Record<string, string>;
  /** A fresh body for each try. */
  body?: () => Buffer | undefined;
  /** Do not follow redirects (upload Locations are read, not followed). */
  manualRedirect?: boolean;
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);

/** The host that serves a reference's domain. */
export function registryHost(domain: string): string {
  return domain === 'docker.io' || domain === 'index.docker.io' ? 'registry-1.docker.io' : domain;
}

function hostName(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const colon = hostPort.lastIndexOf(':');
  return colon >= 0 && hostPort.indexOf(':') === colon ? hostPort.slice(0, colon) : hostPort;
}

/** Plain HTTP is allowed for loopback hosts and the insecure registries named by the user. */
export function httpAllowed(domain: string, insecure: string[] = []): boolean {
  const name = hostName(domain).toLowerCase();
  if (name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)) return true;
  return insecure.some((h) => {
    const x = h.replace(/^https?:\/\//, '').replace(/\/+$/, '').toLowerCase();
    return x === domain.toLowerCase() || x === name;
  });
}

/** `repository:<path>:<actions>`. */
export function repoScope(path: string, actions: string): string {
  return `repository:${path}:${actions}`;
}

function errorText(e: unknown): string {
  const err = e as Error & { cause?: Error & { code?: string } };
  const cause = err.cause;
  if (cause && cause.message) return cause.code && !cause.message.includes(cause.code) ? `${cause.code}: ${cause.message}` : cause.message;
  return err.message;
}

function isTlsError(e: unknown): boolean {
  const text = errorText(e);
  return /SSL|TLS|EPROTO|wrong version number|certificate|self.signed|packet length/i.test(text);
}

/** The registry's `{"errors":[{code,message,detail}]}` as Docker prints it: `manifest unknown: manifest unknown`. */
export async function registryErrorText(res: Response): Promise<string> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    /* the body may be gone */
  }
  try {
    const doc = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[]; details?: string; error?: string };
    if (Array.isArray(doc.errors) && doc.errors.length > 0) {
      return doc.errors.map((e) => [e.code ? e.code.toLowerCase().replace(/_/g, ' ') : '', e.message ?? ''].filter((x) => x).join(': ')).join(', ');
    }
    if (doc.details) return doc.details;
    if (doc.error) return doc.error;
  } catch {
    /* not JSON */
  }
  const plain = text.trim().split('\n')[0] ?? '';
  return plain.length > 0 && plain.length < 300 ? plain : `${res.status} ${res.statusText}`.trim();
}

function codeFor(status: number): RegistryErrorCode {
  if (status === 401) return 'REGISTRY_AUTH';
  if (status === 403) return 'REGISTRY_DENIED';
  if (status === 404) return 'REGISTRY_NOT_FOUND';
  if (RETRY_STATUS.has(status)) return 'REGISTRY_UNAVAILABLE';
  return 'REGISTRY_HTTP';
}

async function drain(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    /* nothing to free */
  }
}

interface Token {
  value: string;
  expires: number;
}

export class RegistryClient {
  readonly host: string;
  private base: string | undefined;
  private challenge: Challenge | null = null;
  private pinging: Promise<void> | undefined;
  private creds: Promise<Credentials | undefined> | undefined;
  private readonly tokens = new Map<string, Promise<Token>>();
  private readonly attempts: number;
  private readonly baseDelay: number;
  private readonly maxDelay: number;

  constructor(
    readonly domain: string,
    private readonly opts: ClientOptions = {},
  ) {
    this.host = registryHost(domain);
    this.attempts = Math.max(1, opts.retry?.attempts ?? 4);
    this.baseDelay = opts.retry?.baseDelayMs ?? 500;
    this.maxDelay = opts.retry?.maxDelayMs ?? 10_000;
  }

  /** The credentials in use (explicit, else config.json / helper), loaded once. */
  credentials(): Promise<Credentials | undefined> {
    this.creds ??= this.opts.credentials ? Promise.resolve(this.opts.credentials) : lookupCredentials(this.domain, this.opts.dockerConfigDir);
    return this.creds;
  }

  /** `https://host` or `http://host`, after the first successful contact. */
  get baseUrl(): string | undefined {
    return this.base;
  }

  private userAgent(): string {
    return `tsbuild/${TSBUILD_VERSION} node/${process.versions.node}`;
  }

  private delay(attempt: number, res?: Response): number {
    const after = res?.headers.get('retry-after');
    if (after && /^\d+$/.test(after)) return Math.min(Number(after) * 1000, this.maxDelay);
    const base = this.baseDelay * 2 ** (attempt - 1);
    return Math.min(base + Math.random() * base * 0.2, this.maxDelay);
  }

  /** fetch with the retry policy; no auth. */
  private async fetchRetry(url: string, init: RequestInit & { body?: never }, body?: () => Buffer | undefined, retryNetwork = true): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        const b = body?.();
        await installExtraCaCerts();
        res = await fetch(url, { ...init, ...(b !== undefined ? { body: b } : {}), ...(this.opts.signal ? { signal: this.opts.signal } : {}) });
      } catch (e) {
        if (this.opts.signal?.aborted) throw e;
        if (!retryNetwork || attempt >= this.attempts || isTlsError(e) || /ECONNREFUSED|ENOTFOUND|EAI_AGAIN/.test(errorText(e))) {
          throw new RegistryError('REGISTRY_NETWORK', `cannot reach ${new URL(url).host}: ${errorText(e)}`, { cause: e });
        }
        await sleep(this.delay(attempt), undefined, this.opts.signal ? { signal: this.opts.signal } : undefined);
        continue;
      }
      if (RETRY_STATUS.has(res.status) && attempt < this.attempts) {
        const wait = this.delay(attempt, res);
        await drain(res);
        await sleep(wait, undefined, this.opts.signal ? { signal: this.opts.signal } : undefined);
        continue;
      }
      return res;
    }
  }

  /** Finds the scheme that answers and the auth challenge of `GET /v2/`. */
  ping(): Promise<void> {
    this.pinging ??= (async () => {
      const allowHttp = httpAllowed(this.domain, this.opts.insecureRegistries);
      const schemes = allowHttp ? ['https', 'http'] : ['https'];
      let lastError: unknown;
      for (const scheme of schemes) {
        const base = `${scheme}://${this.host}`;
        let res: Response;
        try {
          res = await this.fetchRetry(`${base}/v2/`, { method: 'GET', headers: { 'User-Agent': this.userAgent() } }, undefined, scheme === schemes[schemes.length - 1]);
        } catch (e) {
          lastError = e;
          continue;
        }
        this.base = base;
        this.challenge = null;
        if (res.status === 401) {
          const all = parseChallenges(res.headers.get('www-authenticate'));
          this.challenge = all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic') ?? null;
        } else if (RETRY_STATUS.has(res.status)) {
          const text = await registryErrorText(res);
          this.pinging = undefined;
          throw new RegistryError('REGISTRY_UNAVAILABLE', `${this.host} is unavailable: ${text} (after ${this.attempts} attempts)`, { status: res.status });
        }
        await drain(res);
        return;
      }
      this.pinging = undefined;
      const cause = (lastError as RegistryError | undefined)?.cause ?? lastError;
      if (!allowHttp && isTlsError(cause)) {
        throw new RegistryError(
          'REGISTRY_INSECURE',
          `cannot reach ${this.host} over HTTPS (${errorText(cause)}); plain HTTP is only used for localhost and 127.0.0.0/8, or with --insecure-registry ${this.domain}`,
          { cause },
        );
      }
      throw lastError instanceof RegistryError ? lastError : new RegistryError('REGISTRY_NETWORK', `cannot reach ${this.host}: ${errorText(lastError)}`, { cause: lastError });
    })();
    return this.pinging;
  }

  private async fetchToken(scopes: string[], challenge: Challenge): Promise<Token> {
    const creds = await this.credentials();
    if (creds?.registryToken) return { value: creds.registryToken, expires: Infinity };
    const realm = challenge.params['realm'];
    if (!realm) throw new RegistryError('REGISTRY_AUTH', `${this.host} asked for a bearer token without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch (e) {
      throw new RegistryError('REGISTRY_AUTH', `${this.host} named an invalid token realm ${JSON.stringify(realm)}`, { cause: e });
    }
    const service = challenge.params['service'];
    const headers: Record<string, string> = { 'User-Agent': this.userAgent() };
    let res: Response;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'tsbuild' });
      if (service) form.set('service', service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      res = await this.fetchRetry(url.toString(), { method: 'POST', headers }, () => Buffer.from(form.toString()));
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      if (creds?.username) {
        url.searchParams.set('account', creds.username);
        headers['Authorization'] = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
      }
      res = await this.fetchRetry(url.toString(), { method: 'GET', headers });
    }
    if (res.status === 401 || res.status === 403) {
      const text = await registryErrorText(res);
      const detail = hasCredentials(creds) ? 'incorrect username or password' : 'authentication required';
      throw new RegistryError('REGISTRY_AUTH', `unauthorized: ${detail} (token server ${url.host}: ${text})`, { status: res.status });
    }
    if (!res.ok) {
      const text = await registryErrorText(res);
      throw new RegistryError(codeFor(res.status), `token server ${url.host} answered ${res.status}: ${text}`, { status: res.status });
    }
    let doc: { token?: string; access_token?: string; expires_in?: number };
    try {
      doc = (await res.json()) as typeof doc;
    } catch (e) {
      throw new RegistryError('REGISTRY_AUTH', `token server ${url.host} sent no JSON`, { cause: e });
    }
    const value = doc.access_token || doc.token;
    if (!value) throw new RegistryError('REGISTRY_AUTH', `token server ${url.host} sent no token`);
    const life = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    return { value, expires: Date.now() + Math.max(1, life - 5) * 1000 };
  }

  private token(scopes: string[], challenge: Challenge, fresh = false): Promise<Token> {
    const key = [...new Set(scopes)].sort().join(' ');
    const cached = this.tokens.get(key);
    if (cached && !fresh) {
      return cached.then((t) => (t.expires > Date.now() ? t : this.token(scopes, challenge, true)));
    }
    const p = this.fetchToken([...new Set(scopes)].sort(), challenge);
    this.tokens.set(key, p);
    p.catch(() => this.tokens.delete(key));
    return p;
  }

  private async authorization(scopes: string[], fresh = false, challenge = this.challenge): Promise<string | undefined> {
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      const c = await this.credentials();
      if (!c?.username && !c?.password) return undefined;
      return `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64')}`;
    }
    if (challenge.scheme === 'bearer') return `Bearer ${(await this.token(scopes, challenge, fresh)).value}`;
    return undefined;
  }

  /**
   * One API call (path `/v2/…` or an absolute URL) with auth and retries. The caller
   * reads the status; `fail` turns an unexpected one into an error.
   */
  async request(method: string, path: string, opts: RequestOptions): Promise<Response> {
    await this.ping();
    const url = /^https?:\/\//.test(path) ? path : `${this.base}${path}`;
    let scopes = opts.scopes;
    let challenge = this.challenge;
    for (let reauth = 0; ; reauth++) {
      const headers: Record<string, string> = { 'User-Agent': this.userAgent(), ...(opts.headers ?? {}) };
      const auth = await this.authorization(scopes, reauth > 0, challenge);
      if (auth) headers['Authorization'] = auth;
      const res = await this.fetchRetry(url, { method, headers, ...(opts.manualRedirect ? { redirect: 'manual' as const } : {}) }, opts.body);
      if (res.status !== 401 || reauth > 0) return res;
      // A 401: the token lacks a scope (or expired), or the challenge changed.
      const next = parseChallenges(res.headers.get('www-authenticate'));
      const bearer = next.find((c) => c.scheme === 'bearer');
      const basic = next.find((c) => c.scheme === 'basic');
      if (bearer) {
        const extra = (bearer.params['scope'] ?? '').split(' ').filter((s) => s);
        scopes = [...new Set([...scopes, ...extra])];
        challenge = bearer;
        this.challenge ??= bearer;
      } else if (basic && !(challenge?.scheme === 'basic')) {
        challenge = basic;
        this.challenge ??= basic;
      } else {
        return res;
      }
      await drain(res);
    }
  }

  /** Turns an unexpected response into a RegistryError; `what` names the operation. */
  async fail(res: Response, what: string): Promise<never> {
    const insufficient = res.status === 401 && parseChallenges(res.headers.get('www-authenticate')).some((c) => c.params['error'] === 'insufficient_scope');
    let text = await registryErrorText(res);
    // HEAD answers and some proxies carry no body: say what Docker says.
    if (text === `${res.status} ${res.statusText}`.trim()) {
      if (res.status === 401) text = 'unauthorized: authentication required';
      else if (res.status === 403) text = 'denied: requested access to the resource is denied';
      else if (res.status === 404) text = 'not found';
    }
    const code = insufficient ? 'REGISTRY_DENIED' : codeFor(res.status);
    let message = `${what}: ${text}`;
    if (insufficient) {
      message = `${what}: denied: requested access to the resource is denied`;
    } else if (res.status === 401) {
      const c = await this.credentials();
      if (!hasCredentials(c)) message = `${what}: ${text} (no credentials for ${this.domain}; use tsbuild login ${this.domain})`;
    } else if (RETRY_STATUS.has(res.status)) {
      message = `${what}: ${res.status} ${text} (after ${this.attempts} attempts)`;
    }
    throw new RegistryError(code, message, { status: res.status });
  }
}
