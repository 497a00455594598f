import { OpenAIError } from '@gw/common';
import { BudgetPeriod, Refusal, Scope, ScopeLimits, toUsd } from './limit.types';
import { formatReset, retryAfterSeconds } from './rate-limit.headers';

export interface RefusalContext {
  tenantName: string;
  keyName: string;
  limits: Record<Scope, ScopeLimits>;
  /** What this request asked to reserve. */
  tokens: number;
  costUnits: number;
  /** The cost of its useful minimum (see budget.decision.ts). */
  minCostUnits: number;
  resetsAt: Record<BudgetPeriod, Date>;
  /** x-ratelimit-* headers, sent with refusals too. */
  headers: Record<string, string>;
}

export function formatUsd(units: number): string {
  const usd = toUsd(units);
  const fixed = usd.toFixed(6).replace(/0+$/, '');
  const [whole, frac = ''] = fixed.split('.');
  return `$${whole}.${frac.padEnd(2, '0')}`;
}

/**
 * The rule of budget.decision.ts: a budget refusal is final only when settled spend leaves less than the
 * request's useful minimum; otherwise reservations of requests in flight were in the way (they may come back).
 */
export function budgetRefusalIsFinal(r: { spentUnits: number; reservedUnits: number }, limitUnits: number, minCostUnits: number): boolean {
  return r.spentUnits >= limitUnits || r.spentUnits + minCostUnits > limitUnits || r.reservedUnits <= 0;
}

/**
 * The 429 a refused request gets, shaped like OpenAI's: rate limits are `rate_limit_exceeded` with
 * Retry-After; an exhausted budget is `insufficient_quota` without Retry-After, so that clients such as
 * Codex stop instead of retrying, and says which budget it was and when it resets. A budget held by
 * reservations of requests in flight is not exhausted (that money may come back): a retryable 429.
 * `x-should-retry` tells the openai SDKs which is which (they otherwise retry every 429).
 */
export function refusalError(r: Refusal, c: RefusalContext): OpenAIError {
  const who = r.scope === 'key' ? `API key "${c.keyName}"` : `tenant "${c.tenantName}"`;
  const l = c.limits[r.scope];
  switch (r.kind) {
    case 'requests':
      return new OpenAIError(
        429,
        `Rate limit reached for ${who} on requests per min (RPM): Limit ${l.rpm}, Used ${l.rpm}, Requested 1. Please try again in ${formatReset(r.retryAfterMs)}.`,
        'requests',
        'rate_limit_exceeded',
        null,
        { ...c.headers, 'retry-after': retryAfterSeconds(r.retryAfterMs) },
      );
    case 'tokens':
      return new OpenAIError(
        429,
        `Rate limit reached for ${who} on tokens per min (TPM): Limit ${l.tpm}, Used ${r.used}, Requested ${c.tokens}. ` +
          `Please try again in ${formatReset(r.retryAfterMs)}. A request reserves its prompt plus max_tokens (or the gateway's default) until it ends.`,
        'tokens',
        'rate_limit_exceeded',
        null,
        { ...c.headers, 'retry-after': retryAfterSeconds(r.retryAfterMs) },
      );
    case 'concurrency':
      return new OpenAIError(
        429,
        `Too many concurrent requests for ${who}: Limit ${l.concurrency}, In flight ${r.used}. Please try again in 1s.`,
        'requests',
        'rate_limit_exceeded',
        null,
        { ...c.headers, 'retry-after': '1' },
      );
    case 'budget': {
      const limit = (r.period === 'daily' ? l.dailyUnits : l.monthlyUnits) ?? 0;
      const unit = r.period === 'daily' ? 'UTC day' : 'UTC calendar month';
      const inFlight = r.reservedUnits > 0 ? ` and ${formatUsd(r.reservedUnits)} reserved by requests in flight` : '';
      if (!budgetRefusalIsFinal(r, limit, c.minCostUnits)) {
        return new OpenAIError(
          429,
          `Rate limit reached: the ${r.period} budget of ${who} is ${formatUsd(limit)} per ${unit}, ${formatUsd(r.spentUnits)} is spent${inFlight}, ` +
            `and this request may cost up to ${formatUsd(c.costUnits)}. Reservations come back (less what those requests really cost) as they end: please try again in 1s.`,
          'requests',
          'rate_limit_exceeded',
          null,
          { ...c.headers, 'retry-after': '1', 'x-should-retry': 'true' },
        );
      }
      return new BudgetExhaustedError(
        `You exceeded your current quota: the ${r.period} budget of ${who} is ${formatUsd(limit)} per ${unit}, ` +
          `${formatUsd(r.spentUnits)} is spent${inFlight}, and this request may cost up to ${formatUsd(c.costUnits)}. ` +
          (r.spentUnits < limit ? `What is left is less than this request's useful minimum (${formatUsd(c.minCostUnits)}). ` : '') +
          `The budget resets at ${c.resetsAt[r.period].toISOString()}.`,
        { ...c.headers, 'x-should-retry': 'false' },
        c.resetsAt[r.period],
        `Ask your team admin to raise the ${r.period} budget of ${who} (${formatUsd(limit)} per ${unit})`,
      );
    }
  }
}

/** Header values must be visible ASCII (names are the admin's free text): anything else becomes '?'. */
function headerSafe(s: string, max = 300): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

/**
 * A spent budget (final until it resets). As `insufficient_quota` it keeps OpenAI's meaning for the SDKs
 * (429, `x-should-retry: false`), but Codex 0.169 prints only its own "Quota exceeded. Check your plan and
 * billing details." for that code, so `/v1/responses` answers it as `forCodex()`.
 */
export class BudgetExhaustedError extends OpenAIError {
  constructor(
    message: string,
    headers: Record<string, string>,
    readonly resetsAt: Date,
    /** Which budget, and who can raise it: one line, for Codex's usage-limit message. */
    readonly advice: string,
  ) {
    super(429, message, 'insufficient_quota', 'insufficient_quota', null, headers);
  }

  /**
   * The shape Codex prints with the gateway's own words and does not retry (verified with the real binary,
   * docs/codex-wire.md): 429 `type: usage_limit_reached` with `resets_at` (unix seconds) makes it print
   * "You've hit your usage limit. <x-codex-promo-message>, or try again at <local time>." and stop. The
   * `code` stays `insufficient_quota` (what SDK users match on, and the ledger's error code).
   */
  forCodex(): OpenAIError {
    const e = new OpenAIError(429, this.body.error.message, 'usage_limit_reached', 'insufficient_quota', null, {
      ...this.headers,
      'x-codex-promo-message': headerSafe(this.advice),
    });
    (e.body.error as unknown as Record<string, unknown>).resets_at = Math.floor(this.resetsAt.getTime() / 1000);
    return e;
  }
}
