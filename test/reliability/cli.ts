// Test launcher for the CLI straight from the sources (no `npm run build` needed).
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv);
