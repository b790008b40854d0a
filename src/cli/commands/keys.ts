/**
 * `sluice keys create | list | revoke`: API keys of the caller's workspace, over GraphQL
 * (createApiKey, apiKeys, revokeApiKey). Without `--api-key`, a local call to a local server
 * is the default workspace's ADMIN (keyless local access).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ERROR_FIELDS, SluiceClient, unwrap, type ClientOptions } from '../client.js';
import { printJson, table, when } from '../output.js';
import { addClientOptions } from './client-options.js';

const KEY_FIELDS = 'id name scope prefix createdAt lastUsedAt expiresAt revoked revokedAt';

interface ApiKey {
  id: string;
  name: string;
  scope: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revoked: boolean;
  revokedAt: string | null;
}

/** `--expires`: an ISO date-time, or a duration from now (`30d`, `12h`). */
export function parseExpiry(value: string, now = Date.now()): string {
  const rel = /^(\d+)\s*([dhm])$/i.exec(value.trim());
  if (rel) {
    const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[rel[2]!.toLowerCase() as 'd' | 'h' | 'm'];
    return new Date(now + Number(rel[1]) * unit).toISOString();
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new InvalidArgumentError('expected a date-time (2026-01-31T00:00:00Z) or a duration (30d, 12h, 45m).');
  return new Date(t).toISOString();
}

function status(k: ApiKey, now = Date.now()): string {
  if (k.revoked) return 'revoked';
  if (k.expiresAt && Date.parse(k.expiresAt) <= now) return 'expired';
  return 'active';
}

async function create(name: string, options: ClientOptions & { scope: string; expires?: string; json?: boolean }): Promise<void> {
  const client = new SluiceClient(options);
  const data = await client.request<{ createApiKey: { __typename: string; key: string; apiKey: ApiKey } }>(
    `mutation CreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { ${ERROR_FIELDS} ... on CreateApiKeyPayload { key apiKey { ${KEY_FIELDS} } } } }`,
    { input: { name, scope: options.scope, expiresAt: options.expires ?? null } },
  );
  const { key, apiKey } = unwrap(data.createApiKey, 'CreateApiKeyPayload');
  if (options.json) return printJson({ key, apiKey });
  // The key alone on stdout (`KEY=$(sluice keys create ci)`), the rest on stderr.
  process.stdout.write(`${key}\n`);
  console.error(
    `created ${apiKey.scope} key "${apiKey.name}" (id ${apiKey.id}, ${apiKey.expiresAt ? `expires ${when(apiKey.expiresAt)}` : 'never expires'}).\n` +
      'It is shown only now: store it. Send it as `authorization: Bearer <key>`, or set SLUICE_API_KEY for this CLI.',
  );
}

async function list(options: ClientOptions & { revoked: boolean; json?: boolean }): Promise<void> {
  const client = new SluiceClient(options);
  const keys: ApiKey[] = [];
  let after: string | null = null;
  for (;;) {
    const data: { apiKeys: { nodes: ApiKey[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } = await client.request(
      `query ApiKeys($after: String, $includeRevoked: Boolean) { apiKeys(first: 100, after: $after, includeRevoked: $includeRevoked) { nodes { ${KEY_FIELDS} } pageInfo { hasNextPage endCursor } } }`,
      { after, includeRevoked: options.revoked },
    );
    keys.push(...data.apiKeys.nodes);
    if (!data.apiKeys.pageInfo.hasNextPage || !data.apiKeys.pageInfo.endCursor) break;
    after = data.apiKeys.pageInfo.endCursor;
  }
  if (options.json) return printJson(keys);
  if (!keys.length) {
    console.log('no API keys');
    return;
  }
  console.log(
    table(
      ['ID', 'NAME', 'SCOPE', 'PREFIX', 'STATUS', 'CREATED', 'LAST USED', 'EXPIRES'],
      keys.map((k) => [k.id, k.name, k.scope, k.prefix, status(k), when(k.createdAt), when(k.lastUsedAt), k.expiresAt ? when(k.expiresAt) : 'never']),
    ),
  );
}

async function revoke(id: string, options: ClientOptions & { json?: boolean }): Promise<void> {
  const client = new SluiceClient(options);
  const data = await client.request<{ revokeApiKey: { __typename: string; apiKey: ApiKey } }>(
    `mutation RevokeApiKey($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) { ${ERROR_FIELDS} ... on RevokeApiKeyPayload { apiKey { ${KEY_FIELDS} } } } }`,
    { input: { id } },
  );
  const { apiKey } = unwrap(data.revokeApiKey, 'RevokeApiKeyPayload');
  if (options.json) return printJson(apiKey);
  console.log(`revoked key "${apiKey.name}" (id ${apiKey.id}, prefix ${apiKey.prefix}) at ${when(apiKey.revokedAt)}`);
}

export function register(program: Command): void {
  const keys = program.command('keys').description('create, list and revoke API keys');
  addClientOptions(
    keys
      .command('create')
      .description('create an API key; prints the key (shown only once) on stdout')
      .argument('<name>', 'display name, e.g. ci')
      .addOption(new Option('--scope <scope>', 'READ (queries), WRITE (also mutations) or ADMIN (also key management)').choices(['READ', 'WRITE', 'ADMIN']).default('READ'))
      .option('--expires <when>', 'expiry: a date-time (2026-01-31T00:00:00Z) or a duration from now (30d, 12h); default never', (v: string) => parseExpiry(v))
      .option('--json', 'print the key and its record as JSON'),
  ).action(create);
  addClientOptions(
    keys
      .command('list')
      .description('list API keys, newest first')
      .option('--no-revoked', 'leave out revoked keys')
      .option('--json', 'machine-readable output'),
  ).action(list);
  addClientOptions(
    keys
      .command('revoke')
      .description('revoke an API key (it is refused from now on)')
      .argument('<id>', 'the key id from `sluice keys list` (not the key itself)')
      .option('--json', 'machine-readable output'),
  ).action(revoke);
}
