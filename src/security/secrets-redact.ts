/**
 * Last line of defence for messages (check results, job errors, logs, events): removes known
 * secret values, also in their URL-encoded and Basic-credential forms, before a message
 * leaves the code that knows the secrets. Values shorter than MIN_SECRET_LENGTH are not
 * scrubbed (they would mangle ordinary words and are no real secret).
 */
export const REDACTED = '***';
/** What responses show instead of a write-only secret; sent back, it keeps the stored value. */
export const PLACEHOLDER = '**********';
export const MIN_SECRET_LENGTH = 4;

/** Every form a secret may take in a message, longest first. */
export function secretForms(secrets: Iterable<string>): string[] {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH) continue;
    forms.add(s);
    forms.add(encodeURIComponent(s));
    forms.add(new URLSearchParams({ v: s }).toString().slice(2));
    forms.add(Buffer.from(s, 'utf8').toString('base64'));
    forms.add(JSON.stringify(s).slice(1, -1));
  }
  return [...forms].filter((f) => f.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

/** `text` with every form of every secret replaced by `***`. */
export function scrubSecrets(text: string, secrets: Iterable<string>): string {
  return scrubberFor(secrets)(text);
}

/** A scrubber bound to a fixed list of secrets (forms computed once). */
export function scrubberFor(secrets: Iterable<string>): (text: string) => string {
  const forms = secretForms(secrets);
  if (!forms.length) return (t) => t;
  return (text) => {
    if (!text) return text;
    let out = text;
    for (const f of forms) if (out.includes(f)) out = out.split(f).join(REDACTED);
    return out;
  };
}

/**
 * `value` as plain JSON with `clean` applied to every string in it, keys included: bigints
 * become decimal strings, undefined properties are left out, and anything nested deeper than
 * 20 levels becomes '[too deep]' (so no string escapes `clean` however deep it sits).
 */
export function mapStrings(value: unknown, clean: (s: string) => string, depth = 0): unknown {
  if (typeof value === 'string') return clean(value);
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  if (depth > 20) return '[too deep]';
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, clean, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (v !== undefined) out[clean(k)] = mapStrings(v, clean, depth + 1);
  return out;
}
