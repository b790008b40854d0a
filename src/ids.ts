/**
 * Global object ids as the GraphQL API shows them (Relay: base64 of `Type:id`, the encoding
 * @pothos/plugin-relay uses, so ids made here and ids the schema emits are the same string).
 * Services use this to name objects in errors and payloads without importing the GraphQL layer.
 */

/** The global id of database row `id` of GraphQL type `typename`, e.g. `globalId('Pipeline', uuid)`. */
export function globalId(typename: string, id: string): string {
  return Buffer.from(`${typename}:${id}`, 'utf8').toString('base64');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TYPENAME = /^[A-Z_a-z]\w*$/;
/** Object types whose ids are not database UUIDs. */
const NON_UUID_IDS = new Set(['ConnectorDefinition']);

/**
 * Reads a global id: its type name and row id, or null when it is not one Sluice could have
 * made (not base64 of `Type:id`, or a database type whose id is not a UUID).
 */
export function parseGlobalId(globalID: string): { typename: string; id: string } | null {
  if (typeof globalID !== 'string' || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(globalID)) return null;
  const text = Buffer.from(globalID, 'base64').toString('utf8');
  const at = text.indexOf(':');
  if (at <= 0) return null;
  const typename = text.slice(0, at);
  const id = text.slice(at + 1);
  if (!id || !TYPENAME.test(typename)) return null;
  if (!NON_UUID_IDS.has(typename) && !UUID.test(id)) return null;
  return { typename, id };
}
