// Test launcher for the CLI from the sources, like bin/tsbuild: a non-root caller re-executes
// itself in its user namespace before the CLI is loaded (the waiting outer process stays small).
import { reexecRootless } from '../../src/cli/rootless.js';

const code = await reexecRootless(process.argv).catch(() => undefined);
process.exitCode = code ?? (await (await import('../../src/cli/main.js')).main(process.argv));
