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
