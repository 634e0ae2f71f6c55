/** repositories.json: familiar name → familiar reference → image ID (STORE-FORMAT.md §1). */
import { readFile } from 'node:fs/promises';
import { goJson, type GoJson } from '../image/gojson.js';
import type { ImageId } from '../image/digest.js';
import { familiarName, familiarString, withDefaultTag, type Reference } from '../image/reference.js';
import { writeFileAtomic } from './fsutil.js';

export type Repositories = Record<string, Record<string, ImageId>>;

export async function readRepositories(path: string): Promise<Repositories> {
  try {
    const doc = JSON.parse(await readFile(path, 'utf8')) as { Repositories?: Repositories };
    return doc.Repositories ?? {};
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
}

function sorted<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
}

export async function writeRepositories(path: string, repos: Repositories): Promise<void> {
  const doc: Record<string, GoJson> = {};
  for (const [name, refs] of Object.entries(sorted(repos))) if (Object.keys(refs).length > 0) doc[name] = sorted(refs);
  await writeFileAtomic(path, goJson({ Repositories: doc }), 0o600);
}

export function addReference(repos: Repositories, ref: Reference, id: ImageId): void {
  const r = withDefaultTag(ref);
  const name = familiarName(r);
  repos[name] = { ...(repos[name] ?? {}), [familiarString(r)]: id };
}

/** Removes a reference; returns the image it pointed to. */
export function removeReference(repos: Repositories, ref: Reference): ImageId | undefined {
  const r = withDefaultTag(ref);
  const name = familiarName(r);
  const key = familiarString(r);
  const id = repos[name]?.[key];
  if (id === undefined) return undefined;
  delete repos[name]![key];
  if (Object.keys(repos[name]!).length === 0) delete repos[name];
  return id;
}

export function referencesTo(repos: Repositories, id: ImageId): string[] {
  const out: string[] = [];
  for (const refs of Object.values(repos)) for (const [ref, target] of Object.entries(refs)) if (target === id) out.push(ref);
  return out.sort();
}
