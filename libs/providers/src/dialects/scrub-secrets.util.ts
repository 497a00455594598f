/**
 * Keys in upstream error messages (OpenAI echoes a masked one) never reach our clients or logs; nor do the
 * gateway's own OpenAI organization and project ids (`org-…`, `proj_…`), which say whose account it is.
 * Accepts anything: upstream JSON is not trusted to put a string where a string belongs.
 */
export function scrubSecrets(text: unknown, credential: string | null): string {
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- any other value becomes text somehow: this is for a log line
  let out = typeof text === 'string' ? text : text === undefined || text === null ? '' : String(text);
  if (credential) out = out.split(credential).join('[redacted]');
  out = out.replace(/\b(sk|rk|or|pk)-[A-Za-z0-9_*-]{6,}/g, '$1-[redacted]');
  out = out.replace(/\b(org|proj)([-_])[A-Za-z0-9_*-]{6,}/g, '$1$2[redacted]');
  return out;
}
