import { OpenAIError } from '@gw/common';
import { CircuitBreaker, CircuitLabels } from './circuit-breaker';
import { TargetBackoff, backoffKey } from './target.backoff';
import { upstreamQuotaError } from './upstream-error';

/** Why each target of a route did not serve a request. */
export interface Unserved {
  /** Backed off for (or just answered) HTTP 429. */
  rateLimited: CircuitLabels[];
  /** The last upstream error, if any target answered one. */
  last?: OpenAIError;
  /** Backed off for an empty account. */
  quotaSkipped: CircuitLabels[];
  /** Skipped for an open circuit. */
  circuitOpen: CircuitLabels[];
}

/**
 * No target served: the client gets the most useful answer. 429 with Retry-After if some target is only
 * rate-limited (waiting is all the client can do), else the last upstream error, else 503 naming why every
 * target was skipped. `what` names the request's model (or the route's pattern).
 */
export function unservedError(what: string, pattern: string, u: Unserved, breaker: CircuitBreaker, backoff: TargetBackoff): OpenAIError {
  if (u.rateLimited.length) return rateLimitedError(what, u.rateLimited, backoff);
  if (u.last) return u.last;
  if (u.quotaSkipped.length) {
    const c = u.quotaSkipped[0];
    const secs = Math.max(1, Math.ceil((backoff.check(backoffKey(c))?.remainingMs ?? 0) / 1000));
    return upstreamQuotaError(c.provider, ` (it said so recently; the gateway skips it for another ${secs}s)`);
  }
  if (u.circuitOpen.length) {
    const secs = Math.max(1, Math.ceil(breaker.retryInMs(u.circuitOpen) / 1000));
    return new OpenAIError(
      503,
      `Every provider for \`${what}\` is failing (${u.circuitOpen.map((c) => `${c.provider}/${c.model}`).join(', ')}); circuit open, retry in ${secs}s.`,
      'server_error',
      'circuit_open',
      null,
      { 'retry-after': String(secs) },
    );
  }
  return new OpenAIError(503, `No enabled provider serves route "${pattern}".`, 'server_error', 'no_provider');
}

/**
 * Every target left is rate-limited: the limit is the operator's account's, but waiting is all the client
 * can do, so a retryable 429 with Retry-After = the shortest remaining backoff (at least 1 s).
 */
function rateLimitedError(what: string, limited: CircuitLabels[], backoff: TargetBackoff): OpenAIError {
  let min = Infinity;
  for (const c of limited) min = Math.min(min, backoff.check(backoffKey(c))?.remainingMs ?? 0);
  const secs = Math.max(1, Math.ceil((Number.isFinite(min) ? min : 0) / 1000));
  const who = limited.map((c) => `${c.provider}/${c.model}`).join(', ');
  return new OpenAIError(
    429,
    `The provider behind \`${what}\` is rate-limiting the gateway (${who}, HTTP 429). Please try again in ${secs}s.`,
    'rate_limit_exceeded',
    'rate_limit_exceeded',
    null,
    { 'retry-after': String(secs) },
  );
}
