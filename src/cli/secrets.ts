/**
 * `npm run secrets:rotate`: re-encrypts every stored secret under a new key (key file) or the
 * configured primary key (SLUICE_SECRET_KEYS), with the same configuration as `npm start`.
 * With the embedded database, stop the server first (one process per data directory); with
 * PostgreSQL it may run next to live servers (they pick the new key up from the key file, or
 * are restarted with the new SLUICE_SECRET_KEYS).
 */
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/client.js';
import { createLogger } from '../logger.js';
import { runAsSystem } from '../tenancy/scope.js';
import { KeyRing } from '../security/keyring.js';
import { SecretsRotationService } from '../modules/secrets/secrets.service.js';

async function main(): Promise<number> {
  const command = process.argv[2] ?? 'rotate';
  if (command !== 'rotate') {
    console.error(`unknown command "${command}"; usage: secrets-cli rotate`);
    return 2;
  }
  // A ConfigError names every bad variable (never a secret's value); it is printed below.
  const config = loadConfig();
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const ring = KeyRing.open({ keys: config.secretKeys, dataDir: config.dataDir });
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await database.migrate();
    const rotation = new SecretsRotationService(database.prisma, ring, log);
    const r = await runAsSystem(() => rotation.rotate());
    console.log(
      `secrets re-encrypted under key ${r.keyId}: ${r.connectors} connector(s), ${r.authentications} authentication(s), ${r.webhooks} webhook endpoint(s)` +
        (r.retiredKeyIds.length ? `; retired key(s): ${r.retiredKeyIds.join(', ')}` : ''),
    );
    return 0;
  } finally {
    await database.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
