/** Where the store lives: --root, else $TSBUILD_ROOT, else a per-user default. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env['TSBUILD_ROOT']) return env['TSBUILD_ROOT'];
  if (process.getuid?.() === 0) return '/var/lib/tsbuild';
  return join(env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share'), 'tsbuild');
}
