import { BudgetExhaustedError, refusalError } from './limit.errors';
import { toUnits } from './limit.types';
import { codexBudgetHeaders } from './rate-limit.headers';
import { utcDay, utcMonth } from './budget.periods';

const AT = Date.UTC(2026, 11, 1, 3, 0, 0);
const day = utcDay(AT);
const month = utcMonth(AT);
const none = { dailyUnits: null, monthlyUnits: null };

describe("Codex's budget headers (x-codex-primary/secondary-*)", () => {
  it('daily is primary, monthly secondary: the tighter scope, spent plus reserved, window and reset', () => {
    const limits = { key: { dailyUnits: toUnits(10), monthlyUnits: null }, tenant: { dailyUnits: toUnits(4), monthlyUnits: toUnits(100) } };
    const budgets = [
      { spentUnits: toUnits(1), reservedUnits: 0 }, // key daily: 10 %
      null,
      { spentUnits: toUnits(2), reservedUnits: toUnits(1) }, // tenant daily: 75 %
      { spentUnits: toUnits(25), reservedUnits: 0 }, // tenant monthly: 25 %
    ];
    expect(codexBudgetHeaders(budgets, limits, day, month)).toEqual({
      'x-codex-primary-used-percent': '75',
      'x-codex-primary-window-minutes': '1440',
      'x-codex-primary-reset-at': String(Date.UTC(2026, 11, 2) / 1000),
      'x-codex-secondary-used-percent': '25',
      'x-codex-secondary-window-minutes': String(31 * 1440),
      'x-codex-secondary-reset-at': String(Date.UTC(2027, 0, 1) / 1000),
    });
  });

  it('nothing without budgets; an over-spent budget reads 100, a zero budget 100', () => {
    expect(codexBudgetHeaders(undefined, { key: none, tenant: none }, day, month)).toEqual({});
    expect(codexBudgetHeaders([null, null, null, null], { key: none, tenant: none }, day, month)).toEqual({});
    const h = codexBudgetHeaders(
      [{ spentUnits: toUnits(12), reservedUnits: 0 }, { spentUnits: 0, reservedUnits: 0 }, null, null],
      { key: { dailyUnits: toUnits(10), monthlyUnits: 0 }, tenant: none },
      day,
      month,
    );
    expect(h['x-codex-primary-used-percent']).toBe('100');
    expect(h['x-codex-secondary-used-percent']).toBe('100');
  });
});

describe('a spent budget', () => {
  const ctx = {
    tenantName: 'acmé "corp"',
    keyName: 'ci',
    limits: {
      key: { rpm: null, tpm: null, concurrency: null, dailyUnits: null, monthlyUnits: null },
      tenant: { rpm: null, tpm: null, concurrency: null, dailyUnits: toUnits(5), monthlyUnits: null },
    },
    tokens: 100,
    costUnits: toUnits(0.01),
    minCostUnits: toUnits(0.01),
    resetsAt: { daily: new Date(day.end), monthly: new Date(month.end) },
    headers: { 'x-ratelimit-limit-requests': '10' },
  };
  const err = refusalError({ kind: 'budget', scope: 'tenant', period: 'daily', spentUnits: toUnits(5), reservedUnits: 0 }, ctx);

  it("is OpenAI's insufficient_quota for the SDKs: 429, not to be retried", () => {
    expect(err).toBeInstanceOf(BudgetExhaustedError);
    expect(err.getStatus()).toBe(429);
    expect(err.body.error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' });
    expect(err.headers).toMatchObject({ 'x-should-retry': 'false', 'x-ratelimit-limit-requests': '10' });
    expect(err.headers['retry-after']).toBeUndefined();
  });

  it('for Codex: usage_limit_reached with resets_at and an ASCII promo line naming the budget', () => {
    const c = (err as BudgetExhaustedError).forCodex();
    expect(c.getStatus()).toBe(429);
    expect(c.body.error).toMatchObject({ type: 'usage_limit_reached', code: 'insufficient_quota', resets_at: day.end / 1000 });
    expect(c.body.error.message).toBe(err.body.error.message);
    expect(c.headers['x-should-retry']).toBe('false');
    expect(c.headers['x-codex-promo-message']).toBe('Ask your team admin to raise the daily budget of tenant "acm? "corp"" ($5.00 per UTC day)');
    expect(c.headers['x-codex-promo-message']).toMatch(/^[\x20-\x7e]+$/);
  });
});
