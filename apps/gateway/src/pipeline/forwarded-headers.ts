import type { Operation } from '@gw/providers';
import type { Request } from 'express';

/**
 * Client headers a provider that speaks the Responses API natively is sent as the client sent them: what changes
 * the upstream's behaviour for this request (`x-codex-beta-features: remote_compaction_v2` makes OpenAI answer a
 * `compaction_trigger`). An allow-list: nothing else of the client's reaches a provider (credentials, hop-by-hop).
 */
export const FORWARDED_CLIENT_HEADERS: readonly string[] = ['x-codex-beta-features'];

/** Longest value forwarded; a longer one is left out rather than cut (a cut list could mean something else). */
const MAX_VALUE = 1024;

/** The allow-listed headers of `req`, or undefined when it has none (the common case: nothing allocated). */
export function forwardedHeadersOf(req: Request): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const name of FORWARDED_CLIENT_HEADERS) {
    const v = req.headers[name];
    if (typeof v !== 'string' || !v || v.length > MAX_VALUE) continue;
    (out ??= {})[name] = v;
  }
  return out;
}

/** Whether an operation goes to the Responses API natively (where the forwarded headers mean something). */
export function forwardsClientHeaders(op: Operation): boolean {
  return op === 'responses' || op === 'responses_compact';
}
