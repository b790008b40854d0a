/**
 * Global object ids as the GraphQL API shows them (Relay: base64 of `Type:id`, the encoding
 * @pothos/plugin-relay uses, so ids made here and ids the schema emits are the same string).
 * Services use this to name objects in errors and payloads without importing the GraphQL layer.
 */

/** The global id of database row `id` of GraphQL type `typename`, e.g. `globalId('Pipeline', uuid)`. */
export function globalId(typename: string, id: string): string {
  return Buffer.from(`${typename}:${id}`, 'utf8').toString('base64');
}
