/**
 * `sluice secrets rotate` (also `npm run secrets:rotate`): re-encrypts every stored secret under
 * a new key (key file) or the configured primary key (SLUICE_SECRET_KEYS), with the same
 * configuration as `sluice serve`. With the embedded database, stop the server first (one
 * process per data folder); with PostgreSQL it may run next to live servers (they pick the
 * new key up from the key file, or are restarted with the new SLUICE_SECRET_KEYS). A running
 * server can do the same online: the `rotateEncryptionKey` mutation.
 */
import type { Command } from 'commander';
import { readConfig } from '../env.js';
import { openOffline } from '../offline.js';

export async function rotate(options: { dataDir?: string; force?: boolean }): Promise<void> {
  // A ConfigError names every bad variable (never a secret's value).
  const config = readConfig({ SLUICE_DATA_DIR: options.dataDir });
  const [{ createLogger }, { runAsSystem }, { KeyRing }, { SecretsRotationService }] = await Promise.all([
    import('../../logger.js'),
    import('../../tenancy/scope.js'),
    import('../../security/keyring.js'),
    import('../../modules/secrets/secrets.service.js'),
  ]);
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const ring = KeyRing.open({ keys: config.secretKeys, dataDir: config.dataDir });
  const database = await openOffline(config, { force: options.force });
  try {
    await database.migrate();
    const rotation = new SecretsRotationService(database.prisma, ring, log);
    const r = await runAsSystem(() => rotation.rotate());
    console.log(
      `secrets re-encrypted under key ${r.keyId}: ${r.connectors} connector(s), ${r.authentications} authentication(s), ${r.webhooks} webhook endpoint(s)` +
        (r.retiredKeyIds.length ? `; retired key(s): ${r.retiredKeyIds.join(', ')}` : ''),
    );
  } finally {
    await database.close();
  }
}

export function register(program: Command): void {
  const secrets = program.command('secrets').description('re-encrypt stored secrets (rotate)');
  secrets
    .command('rotate')
    .description('re-encrypt every stored secret under a new primary key (offline; a running server: the rotateEncryptionKey mutation)')
    .option('--data-dir <dir>', 'data folder (SLUICE_DATA_DIR, default ./data); DATABASE_URL selects PostgreSQL')
    .option('--force', 'open the embedded database even though it looks open in another process (after a crash)')
    .addHelpText('after', '\nWith the embedded database, stop `sluice serve` first. With SLUICE_SECRET_KEYS, its first key is the target.')
    .action(rotate);
}
