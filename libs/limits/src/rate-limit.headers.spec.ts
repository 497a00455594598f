import { formatUsd } from './limit.errors';
import { toUnits } from './limit.types';
import { formatReset, rateLimitHeaders, retryAfterSeconds } from './rate-limit.headers';
import { utcDay, utcMonth } from './budget.periods';

describe('rate-limit headers', () => {
  it('formats resets the way OpenAI does', () => {
    expect(formatReset(59)).toBe('59ms');
    expect(formatReset(1000)).toBe('1s');
    expect(formatReset(1500)).toBe('1.5s');
    expect(formatReset(360_000)).toBe('6m0s');
    expect(formatReset(3_723_000)).toBe('1h2m3s');
    expect(formatReset(-5)).toBe('0ms');
  });

  it('gives Retry-After in whole seconds, at least one', () => {
    expect(retryAfterSeconds(0)).toBe('1');
    expect(retryAfterSeconds(1001)).toBe('2');
  });

  it('sends only the kinds of limit that apply', () => {
    const none = { rpm: null, tpm: null };
    expect(rateLimitHeaders({ rpm: {}, tpm: {} }, { key: none, tenant: none })).toEqual({});
    const h = rateLimitHeaders({ rpm: {}, tpm: { tenant: { used: 250, resetMs: 30_000 } } }, { key: none, tenant: { rpm: null, tpm: 1000 } });
    expect(h).toEqual({ 'x-ratelimit-limit-tokens': '1000', 'x-ratelimit-remaining-tokens': '750', 'x-ratelimit-reset-tokens': '30s' });
  });

  it('formats money and UTC periods', () => {
    expect(formatUsd(toUnits(0.5))).toBe('$0.50');
    expect(formatUsd(toUnits(0.000123))).toBe('$0.000123');
    expect(formatUsd(toUnits(25))).toBe('$25.00');
    const t = Date.parse('2024-02-29T23:59:59.999Z');
    expect(utcDay(t)).toEqual({ id: '2024-02-29', start: Date.parse('2024-02-29T00:00:00Z'), end: Date.parse('2024-03-01T00:00:00Z') });
    expect(utcMonth(t)).toEqual({ id: '2024-02', start: Date.parse('2024-02-01T00:00:00Z'), end: Date.parse('2024-03-01T00:00:00Z') });
    expect(utcMonth(Date.parse('2025-12-31T12:00:00Z')).end).toBe(Date.parse('2026-01-01T00:00:00Z'));
  });
});
