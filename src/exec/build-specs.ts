/**
 * `--cache-to`, `--cache-from` and `--output` values (BuildKit's CSV syntax,
 * `key=value,key=value`), parsed into typed specs. Pure: unknown types and keys
 * are USAGE errors before anything is built.
 */
import { TsbuildError } from '../errors.js';
import { parseReference } from '../image/reference.js';

export interface CacheToSpec {
  type: 'registry';
  ref: string;
  mode: 'min' | 'max';
  /** `ignore-error=true`: a failed cache push is a warning. */
  ignoreError: boolean;
}

export interface CacheFromSpec {
  type: 'registry';
  ref: string;
}

export type OutputSpec =
  /** An OCI image layout: a tar file (or stdout), or a directory when `tar=false` or dest is one. */
  | { type: 'oci'; dest: string; tar?: boolean }
  /** A docker-save tar (20.10 legacy layout), as `docker load` reads it. */
  | { type: 'docker'; dest: string };

function usage(flag: string, value: string, why: string): never {
  throw new TsbuildError('USAGE', `${flag} ${value}: ${why}`);
}

/** The key=value pairs; the type is checked first (a wrong type says so, not "unknown key"). */
function fields(flag: string, value: string, types: readonly string[], allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) usage(flag, value, `expected key=value, got ${JSON.stringify(part)}`);
    const key = part.slice(0, eq).trim().toLowerCase();
    if (out.has(key)) usage(flag, value, `${key} given twice`);
    out.set(key, part.slice(eq + 1));
  }
  const type = out.get('type');
  if (type === undefined) usage(flag, value, 'type= is required');
  if (!types.includes(type)) usage(flag, value, `unsupported type ${JSON.stringify(type)} (supported: ${types.join(', ')})`);
  for (const key of out.keys()) if (!allowed.includes(key)) usage(flag, value, `unknown key ${JSON.stringify(key)} (known: ${allowed.join(', ')})`);
  return out;
}

function registryRef(flag: string, value: string, ref: string | undefined): string {
  if (ref === undefined || ref === '') usage(flag, value, 'ref= is required');
  let parsed;
  try {
    parsed = parseReference(ref);
  } catch (e) {
    usage(flag, value, (e as Error).message);
  }
  if (parsed.digest !== undefined) usage(flag, value, 'the cache ref must be a tag, not a digest');
  return ref;
}

function bool(flag: string, value: string, key: string, v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  usage(flag, value, `${key} must be true or false`);
}

/** `type=registry,ref=R[,mode=min|max][,ignore-error=true|false]`. */
export function parseCacheTo(value: string): CacheToSpec {
  const flag = '--cache-to';
  const f = fields(flag, value, ['registry'], ['type', 'ref', 'mode', 'ignore-error']);
  const mode = f.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') usage(flag, value, `mode must be min or max, not ${JSON.stringify(mode)}`);
  return { type: 'registry', ref: registryRef(flag, value, f.get('ref')), mode, ignoreError: bool(flag, value, 'ignore-error', f.get('ignore-error')) ?? false };
}

/** `type=registry,ref=R`, or just `R` (as with BuildKit). */
export function parseCacheFrom(value: string): CacheFromSpec {
  const flag = '--cache-from';
  if (!value.includes('=')) return { type: 'registry', ref: registryRef(flag, value, value) };
  const f = fields(flag, value, ['registry'], ['type', 'ref']);
  return { type: 'registry', ref: registryRef(flag, value, f.get('ref')) };
}

/** `type=oci,dest=DIR|FILE|-[,tar=true|false]` or `type=docker,dest=FILE|-`. */
export function parseOutput(value: string): OutputSpec {
  const flag = '--output';
  if (!value.includes('=')) usage(flag, value, 'expected type=oci,dest=… or type=docker,dest=… (a bare path, type=local, is not supported)');
  const f = fields(flag, value, ['oci', 'docker'], ['type', 'dest', 'tar']);
  const type = f.get('type') as 'oci' | 'docker';
  const dest = f.get('dest');
  if (dest === undefined || dest === '') usage(flag, value, 'dest= is required (a path, or - for stdout)');
  if (type === 'docker') {
    if (f.has('tar')) usage(flag, value, 'tar= applies to type=oci only');
    return { type, dest };
  }
  const tar = bool(flag, value, 'tar', f.get('tar'));
  if (tar === false && dest === '-') usage(flag, value, 'an OCI layout directory cannot go to stdout');
  return { type: 'oci', dest, ...(tar !== undefined ? { tar } : {}) };
}
