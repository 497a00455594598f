import { AdmitResult, Scope, WindowReading } from './limit.types';

/** OpenAI's duration format for x-ratelimit-reset-*: "59ms", "1s", "1.5s", "6m0s", "1h0m0s". */
export function formatReset(ms: number): string {
  const t = Math.max(0, Math.ceil(ms));
  if (t < 1000) return `${t}ms`;
  const h = Math.floor(t / 3_600_000);
  const m = Math.floor((t % 3_600_000) / 60_000);
  const s = (t % 60_000) / 1000;
  const sec = `${Number.isInteger(s) ? s : Number(s.toFixed(3))}s`;
  if (h) return `${h}h${m}m${sec}`;
  if (m) return `${m}m${sec}`;
  return sec;
}

/** Retry-After is whole seconds, at least 1. */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

type Limits = Record<Scope, { rpm: number | null; tpm: number | null }>;

/** The scope closest to its limit is the one a client must respect (ties: the key's, it is the narrower). */
function tightest(readings: Partial<Record<Scope, WindowReading>>, limits: Limits, field: 'rpm' | 'tpm') {
  let best: { limit: number; remaining: number; resetMs: number } | undefined;
  for (const scope of ['key', 'tenant'] as const) {
    const r = readings[scope];
    const limit = limits[scope][field];
    if (!r || limit === null) continue;
    const remaining = Math.max(0, limit - r.used);
    if (!best || remaining < best.remaining) best = { limit, remaining, resetMs: r.resetMs };
  }
  return best;
}

/**
 * `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, as OpenAI sends them, for each kind of limit
 * that applies to the caller (no header for a kind that is unlimited).
 */
export function rateLimitHeaders(result: Pick<AdmitResult, 'rpm' | 'tpm'>, limits: Limits): Record<string, string> {
  const h: Record<string, string> = {};
  const req = tightest(result.rpm, limits, 'rpm');
  if (req) {
    h['x-ratelimit-limit-requests'] = String(req.limit);
    h['x-ratelimit-remaining-requests'] = String(req.remaining);
    h['x-ratelimit-reset-requests'] = formatReset(req.resetMs);
  }
  const tok = tightest(result.tpm, limits, 'tpm');
  if (tok) {
    h['x-ratelimit-limit-tokens'] = String(tok.limit);
    h['x-ratelimit-remaining-tokens'] = String(tok.remaining);
    h['x-ratelimit-reset-tokens'] = formatReset(tok.resetMs);
  }
  return h;
}

type Budgets = Record<Scope, { dailyUnits: number | null; monthlyUnits: number | null }>;
interface PeriodBounds {
  start: number;
  end: number;
}

/**
 * Codex's own rate-limit headers (codex-rs `parse_rate_limit_for_limit`): `primary` is the daily budget,
 * `secondary` the monthly one, each as the percent used (spent + reserved, after this request's reservation)
 * of the tighter of the key's and the tenant's, its window in minutes and its reset (unix seconds). Codex
 * shows them in its status view and session log. Nothing for a period without a budget.
 */
export function codexBudgetHeaders(
  budgets: readonly ({ spentUnits: number; reservedUnits: number } | null)[] | undefined,
  limits: Budgets,
  day: PeriodBounds,
  month: PeriodBounds,
): Record<string, string> {
  const h: Record<string, string> = {};
  if (!budgets) return h;
  const windows = [
    { name: 'primary', period: day, field: 'dailyUnits', at: [0, 2] },
    { name: 'secondary', period: month, field: 'monthlyUnits', at: [1, 3] },
  ] as const;
  for (const w of windows) {
    let used: number | undefined;
    (['key', 'tenant'] as const).forEach((scope, i) => {
      const c = budgets[w.at[i]];
      const limit = limits[scope][w.field];
      if (!c || limit === null) return;
      const pct = limit > 0 ? ((c.spentUnits + c.reservedUnits) / limit) * 100 : 100;
      used = Math.max(used ?? 0, Math.min(100, pct));
    });
    if (used === undefined) continue;
    h[`x-codex-${w.name}-used-percent`] = String(Math.round(used * 100) / 100);
    h[`x-codex-${w.name}-window-minutes`] = String(Math.round((w.period.end - w.period.start) / 60_000));
    h[`x-codex-${w.name}-reset-at`] = String(Math.floor(w.period.end / 1000));
  }
  return h;
}
