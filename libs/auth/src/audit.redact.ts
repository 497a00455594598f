/** Fields that hold secrets or their hashes, in either naming (row snake_case or API camelCase). */
const DROPPED = new Set(['secret', 'key_hash', 'keyHash', 'token_hash', 'tokenHash', 'credential', 'credential_enc', 'credentialEnc', 'password']);
/** Header-like names whose values are credentials (e.g. a provider's extra `Authorization` header), anywhere in a row. */
const REDACTED = /^(authorization|proxy-authorization|x-api-key|api[-_]?key|cookie)$/i;
/**
 * Inside a `headers` object every name is a header name, so the broader rule applies there: anything
 * that names a key, token, secret, password, credential, cookie or authorization (the same rule as
 * `redactProviderHeaders` in @gw/providers, which the provider API's views use).
 */
const CREDENTIAL_HEADER = /authorization|cookie|token|secret|passw|credential|key|signature/i;

/**
 * A copy of `value` fit for the audit log: secret fields dropped, credential-like header values
 * replaced. The log must never become the place a dump reveals credentials.
 */
export function redactForAudit<T>(value: T): T {
  if (Array.isArray(value)) return (value as unknown[]).map((v) => redactForAudit(v)) as T;
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (DROPPED.has(k)) continue;
    if (REDACTED.test(k)) out[k] = '[redacted]';
    else if (k === 'headers' && v && typeof v === 'object' && !Array.isArray(v)) {
      out[k] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([h, x]) => [h, CREDENTIAL_HEADER.test(h) ? '[redacted]' : x]));
    } else out[k] = redactForAudit(v);
  }
  return out as T;
}
