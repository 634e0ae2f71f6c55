import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, utimes, writeFile, mkdir } from 'node:fs/promises';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HashCache, hashCacheFile } from '../../src/context/hash-cache.js';
import { loadBuildContext } from '../../src/context/tree.js';

async function sums(ctx: string, cache?: HashCache): Promise<Map<string, string | undefined>> {
  const tree = await loadBuildContext({ contextDir: ctx, ignore: null, ...(cache ? { hashCache: cache } : {}) });
  const out = new Map<string, string | undefined>();
  for (const rel of tree.paths()) out.set(rel, await tree.sum(rel));
  return out;
}

test('hash cache: unchanged files are not rehashed; writes, chmods and replacements are', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-hashcache-'));
  try {
    const ctx = join(dir, 'ctx');
    await mkdir(join(ctx, 'sub'), { recursive: true });
    await writeFile(join(ctx, 'a.txt'), 'alpha\n');
    await writeFile(join(ctx, 'sub/b.txt'), 'bravo\n');
    await writeFile(join(ctx, 'c.txt'), 'charlie\n');
    const file = hashCacheFile(join(dir, 'root'), ctx, 'perm');
    const fresh = await sums(ctx);

    const first = await HashCache.load(file, { racyMs: 0 });
    assert.deepEqual(await sums(ctx, first), fresh);
    assert.equal(first.hits, 0);
    await first.save();

    const second = await HashCache.load(file, { racyMs: 0 });
    assert.deepEqual(await sums(ctx, second), fresh);
    assert.equal(second.hits, 4, 'every file and directory from the cache');
    assert.equal(second.misses, 0);

    // Same size, same mtime, other bytes: the ctime tells.
    const st = await stat(join(ctx, 'a.txt'));
    await writeFile(join(ctx, 'a.txt'), 'ALPHA\n');
    await utimes(join(ctx, 'a.txt'), st.atime, st.mtime);
    await chmod(join(ctx, 'sub/b.txt'), 0o600);
    await rm(join(ctx, 'c.txt'));
    await writeFile(join(ctx, 'c.txt'), 'charlie\n');
    const third = await HashCache.load(file, { racyMs: 0 });
    const now = await sums(ctx, third);
    assert.deepEqual(now, await sums(ctx));
    assert.notEqual(now.get('a.txt'), fresh.get('a.txt'));
    assert.notEqual(now.get('sub/b.txt'), fresh.get('sub/b.txt'));
    assert.equal(third.hits, 1, 'nothing stale is served: only sub/, unchanged, is');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('hash cache: files changed within the racy window are not recorded; a damaged file is an empty cache', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-hashcache-'));
  try {
    const ctx = join(dir, 'ctx');
    await mkdir(ctx);
    await writeFile(join(ctx, 'new.txt'), 'just written\n');
    const file = hashCacheFile(join(dir, 'root'), ctx, 'perm');
    const c = await HashCache.load(file);
    await sums(ctx, c);
    await c.save();
    const again = await HashCache.load(file);
    await sums(ctx, again);
    assert.equal(again.hits, 0, 'a file written this instant is hashed again');

    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, '[["new.txt","x","not-a-sum"], {');
    const damaged = await HashCache.load(file, { racyMs: 0 });
    assert.deepEqual(await sums(ctx, damaged), await sums(ctx));
    await damaged.save();
    assert.ok(Array.isArray(JSON.parse(await readFile(file, 'utf8'))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('hash cache with lazy capabilities: hits need no getfattr; a file given a capability is rehashed with it', { skip: spawnSync('setfattr', ['--version']).status === 0 && process.getuid?.() === 0 ? undefined : 'needs root and setfattr (Debian package attr)' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-hashcache-'));
  try {
    const ctx = join(dir, 'ctx');
    await mkdir(ctx);
    await writeFile(join(ctx, 'plain'), 'plain\n');
    await writeFile(join(ctx, 'capped'), 'capped\n');
    // cap_net_bind_service=ep, as setcap writes it (VFS_CAP_REVISION_2).
    const cap = '0x0000000200040000000000000000000000000000';
    execFileSync('setfattr', ['-n', 'security.capability', '-v', cap, join(ctx, 'capped')]);
    const file = hashCacheFile(join(dir, 'root'), ctx, 'perm');
    const eager = await sums(ctx);
    const lazySums = async (cache: HashCache) => {
      const tree = await loadBuildContext({ contextDir: ctx, ignore: null, hashCache: cache, lazyCapabilities: true });
      return new Map(await Promise.all(tree.paths().map(async (rel) => [rel, await tree.sum(rel)] as const)));
    };
    const first = await HashCache.load(file, { racyMs: 0 });
    assert.deepEqual(await lazySums(first), eager);
    await first.save();
    const second = await HashCache.load(file, { racyMs: 0 });
    assert.deepEqual(await lazySums(second), eager, 'the capability is in the sum of a cached file too');
    assert.equal(second.hits, 2);

    // A capability added to the plain file (its ctime changes): not served from the cache.
    execFileSync('setfattr', ['-n', 'security.capability', '-v', cap, join(ctx, 'plain')]);
    const third = await HashCache.load(file, { racyMs: 0 });
    const now = await lazySums(third);
    assert.deepEqual(now, await sums(ctx));
    assert.notEqual(now.get('plain'), eager.get('plain'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('byteCompare orders like the UTF-8 bytes (ASCII fast path, surrogate pairs, prefixes)', async () => {
  const { byteCompare } = await import('../../src/context/tree.js');
  const ref = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  const alphabet = ['a', 'Z', '0', '/', '.', 'é', 'ÿ', '\u{1F600}', '\u{1F601}', '\uE000', '\uFFFD', '中', '\u0080', '\u007f'];
  let x = 1;
  const rnd = () => (x = (x * 1103515245 + 12345) >>> 0) >>> 8;
  for (let k = 0; k < 20000; k++) {
    const mk = () => Array.from({ length: rnd() % 6 }, () => alphabet[rnd() % alphabet.length]).join('');
    const a = mk();
    let b = mk();
    if (rnd() % 3 === 0) b = a + b;
    if (rnd() % 5 === 0) b = a.slice(0, -1) + b;
    assert.equal(Math.sign(byteCompare(a, b)), Math.sign(ref(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
});
