import type { Command } from 'commander';
import { DEFAULT_URL } from '../client.js';

/** `--url` and `--api-key` of every command that talks to a running server. */
export function addClientOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', `Sluice server (SLUICE_URL, default ${DEFAULT_URL}; /graphql is added when missing)`)
    .option('--api-key <key>', 'API key sent as `authorization: Bearer <key>` (SLUICE_API_KEY; not needed locally)');
}
