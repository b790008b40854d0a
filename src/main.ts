/**
 * `tsx src/main.ts`: the same as `sluice serve` (test helpers and the bench start the server
 * this way). `npm start` runs `bin/sluice.mjs serve`; the commands live in src/cli.
 */
import { serve } from './cli/commands/serve.js';
import { report } from './cli/errors.js';

serve().catch((err: unknown) => {
  process.exit(report(err));
});
