/**
 * Write-only config fields: what the spec marks `"secret": true` is never returned.
 * Responses carry PLACEHOLDER instead; sending PLACEHOLDER back keeps the stored value.
 */
import { getDriver, secretPaths } from '../../engine/drivers/index.js';

export const PLACEHOLDER = '**********';

function walk(obj: unknown, path: string[], fn: (parent: Record<string, unknown>, key: string) => void) {
  if (!obj || typeof obj !== 'object') return;
  const [head, ...rest] = path;
  if (head === undefined) return;
  const o = obj as Record<string, unknown>;
  if (rest.length === 0) {
    if (head in o) fn(o, head);
    return;
  }
  walk(o[head], rest, fn);
}

export function maskSecrets(driverName: string, config: unknown): unknown {
  const driver = getDriver(driverName);
  if (!driver || !config || typeof config !== 'object') return config;
  const paths = secretPaths(driver);
  if (!paths.length) return config;
  const copy = structuredClone(config);
  for (const p of paths) walk(copy, p.split('.'), (o, k) => {
    if (o[k] != null && o[k] !== '') o[k] = PLACEHOLDER;
  });
  return copy;
}

/** Replaces placeholders in `incoming` by the stored values from `stored`. */
export function keepSecrets(driverName: string, incoming: unknown, stored: unknown): unknown {
  const driver = getDriver(driverName);
  if (!driver || !incoming || typeof incoming !== 'object') return incoming;
  const copy = structuredClone(incoming);
  for (const p of secretPaths(driver)) {
    walk(copy, p.split('.'), (o, k) => {
      if (o[k] !== PLACEHOLDER) return;
      let cur: unknown = stored;
      for (const seg of p.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
      o[k] = cur;
    });
  }
  return copy;
}
