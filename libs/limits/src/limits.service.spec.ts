import type { AppConfig } from '@gw/config';
import { OpenAIError } from '@gw/common';
import type { LimitSettings } from '@gw/db';
import type { Principal } from '@gw/tenancy';
import type { KeyPeriodSpend, SpendPeriods, UsageRepository } from '@gw/metering';
import { LimitStore, PeriodSpend, toUnits, toUsd } from './limit.types';
import { LimitsService, UsageEstimate } from './limits.service';
import { MemoryLimitStore } from './memory-limit.store';

const T1 = '00000000-0000-4000-8000-000000000001';
const K1 = '00000000-0000-4000-8000-0000000000a1';
const K2 = '00000000-0000-4000-8000-0000000000a2';

function principal(keyLimits: LimitSettings = {}, tenantLimits: LimitSettings = {}, keyId = K1): Principal {
  return {
    keyId,
    keyName: keyId === K1 ? 'alice' : 'bob',
    keyPrefix: 'sk-gw-xx',
    tenantId: T1,
    tenantName: 'acme',
    allowedModels: null,
    allowedIps: null,
    expiresAt: null,
    keyLimits,
    tenantLimits,
  };
}

const est = (tokens: number, costUsd = 0): UsageEstimate => ({ model: 'm', tokens, costUsd });

/** The ledger as the seeding query sees it: the fake returns whatever the test says is already spent. */
class FakeLedger {
  calls: { tenantId: string; dayStart: Date; monthStart: Date }[] = [];
  spend: PeriodSpend = { tenant: { day: 0, month: 0 }, keys: new Map() };
  async spendByKey(tenantId: string, p: SpendPeriods): Promise<KeyPeriodSpend[]> {
    this.calls.push({ tenantId, dayStart: p.dayStart, monthStart: p.monthStart });
    await new Promise((r) => setImmediate(r)); // a real query yields; concurrent first requests must share it
    // The ledger's rows: one per key, and what no key accounts for under keyId null.
    const rows: KeyPeriodSpend[] = [...this.spend.keys].map(([keyId, s]) => ({ keyId, dayUsd: toUsd(s.day), monthUsd: toUsd(s.month) }));
    const rest = { day: this.spend.tenant.day, month: this.spend.tenant.month };
    for (const s of this.spend.keys.values()) {
      rest.day -= s.day;
      rest.month -= s.month;
    }
    if (rest.day || rest.month) rows.push({ keyId: null, dayUsd: toUsd(rest.day), monthUsd: toUsd(rest.month) });
    return rows;
  }
}

function setup(start = Date.parse('2026-01-10T12:00:00Z')) {
  const clock = { now: start };
  const ledger = new FakeLedger();
  const store = new MemoryLimitStore(() => clock.now);
  const service = new LimitsService({ upstreamTotalTimeoutMs: 600_000 } as AppConfig, store, ledger as unknown as UsageRepository, () => clock.now);
  return { clock, ledger, store, service };
}

async function refusal(p: Promise<unknown>): Promise<OpenAIError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpenAIError) return e;
    throw e;
  }
  throw new Error('expected a refusal, the request was admitted');
}

describe('LimitsService with the in-memory store', () => {
  afterEach(() => jest.useRealTimers());

  it('admits without headers or counters when nothing is limited', async () => {
    const { service, ledger } = setup();
    const a = await service.admit(principal(), est(1_000_000, 1000));
    expect(a.headers).toEqual({});
    a.settle({ tokens: 10, costUsd: 0.5 });
    expect(ledger.calls).toHaveLength(0);
    // spend is still counted, so that a budget set later starts right
    expect((await service.counters(T1, K1)).tenant.daily.spentUnits).toBe(toUnits(0.5));
  });

  describe('requests per minute (throttler storage)', () => {
    it('refuses the request over the key limit with OpenAI headers and Retry-After, and frees up after the window', async () => {
      jest.useFakeTimers({ now: Date.parse('2026-01-10T12:00:00Z') });
      const { service, clock } = setup();
      const p = principal({ requestsPerMinute: 3 });
      const heads = [];
      for (let i = 0; i < 3; i++) heads.push((await service.admit(p, est(1))).headers);
      expect(heads.map((h) => h['x-ratelimit-remaining-requests'])).toEqual(['2', '1', '0']);
      expect(heads[0]['x-ratelimit-limit-requests']).toBe('3');
      expect(heads[0]['x-ratelimit-reset-requests']).toBe('1m0s');
      jest.advanceTimersByTime(20_000);
      clock.now += 20_000; // the throttler storage reads the store's clock too
      const e = await refusal(service.admit(p, est(1)));
      expect(e.getStatus()).toBe(429);
      expect(e.body.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
      expect(e.body.error.message).toContain('API key "alice"');
      expect(e.headers['retry-after']).toBe('40');
      expect(e.headers['x-ratelimit-remaining-requests']).toBe('0');
      jest.advanceTimersByTime(40_000);
      clock.now += 40_000;
      await expect(service.admit(p, est(1))).resolves.toBeDefined();
    });

    it("shares the tenant's limit between its keys", async () => {
      const { service } = setup();
      const tenant = { requestsPerMinute: 2 };
      await service.admit(principal({}, tenant, K1), est(1));
      await service.admit(principal({}, tenant, K2), est(1));
      const e = await refusal(service.admit(principal({}, tenant, K1), est(1)));
      expect(e.body.error.message).toContain('tenant "acme"');
    });

    it('reports the scope closest to its limit', async () => {
      const { service } = setup();
      const h = (await service.admit(principal({ requestsPerMinute: 100 }, { requestsPerMinute: 5 }), est(1))).headers;
      expect(h['x-ratelimit-limit-requests']).toBe('5');
      expect(h['x-ratelimit-remaining-requests']).toBe('4');
    });
  });

  describe('tokens per minute', () => {
    it('reserves the estimate, settles the actual, and refuses what does not fit', async () => {
      const { service, clock } = setup();
      const p = principal({ tokensPerMinute: 1000 });
      const a = await service.admit(p, est(600));
      expect(a.headers['x-ratelimit-remaining-tokens']).toBe('400');
      expect(a.headers['x-ratelimit-reset-tokens']).toBe('1m0s');
      clock.now += 15_000;
      const e = await refusal(service.admit(p, est(600)));
      expect(e.body.error).toMatchObject({ type: 'tokens', code: 'rate_limit_exceeded' });
      expect(e.headers['retry-after']).toBe('45');
      expect(e.headers['x-ratelimit-reset-tokens']).toBe('45s');
      a.settle({ tokens: 100, costUsd: 0 });
      const b = await service.admit(p, est(600));
      expect(b.headers['x-ratelimit-remaining-tokens']).toBe('300');
    });

    it('lets one oversized request through an empty window (or it could never run), then not a second', async () => {
      const { service } = setup();
      const p = principal({ tokensPerMinute: 100 });
      await service.admit(p, est(4096));
      await refusal(service.admit(p, est(1)));
    });

    it('starts a new window after a minute, and a late settle does not touch it', async () => {
      const { service, clock } = setup();
      const p = principal({ tokensPerMinute: 1000 });
      const old = await service.admit(p, est(900));
      clock.now += 61_000;
      const fresh = await service.admit(p, est(900));
      expect(fresh.headers['x-ratelimit-remaining-tokens']).toBe('100');
      old.settle({ tokens: 5000, costUsd: 0 }); // belongs to the previous window
      const next = await service.admit(p, est(50));
      expect(next.headers['x-ratelimit-remaining-tokens']).toBe('50');
    });
  });

  describe('concurrent requests', () => {
    it('holds a slot until the request ends and answers Retry-After: 1 meanwhile', async () => {
      const { service } = setup();
      const p = principal({ concurrentRequests: 2 });
      const a = await service.admit(p, est(1));
      await service.admit(p, est(1));
      const e = await refusal(service.admit(p, est(1)));
      expect(e.body.error.code).toBe('rate_limit_exceeded');
      expect(e.headers['retry-after']).toBe('1');
      a.release();
      await expect(service.admit(p, est(1))).resolves.toBeDefined();
    });
  });

  describe('budgets', () => {
    it('never lets concurrent requests share the same remaining budget', async () => {
      const { service } = setup();
      // an RPM limit too, so admissions really interleave at the throttler's awaits
      const p = principal({ requestsPerMinute: 1000 }, { dailyBudgetUsd: 1 });
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => service.admit(p, est(10, 0.3))));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as OpenAIError);
      // nothing is spent yet: the money is only held by requests in flight, so the refusals are retryable
      expect(refused).toHaveLength(17);
      expect(refused.every((e) => e.body.error.code === 'rate_limit_exceeded' && e.headers['retry-after'] === '1')).toBe(true);
      expect((await service.counters(T1, K1)).tenant.daily).toEqual({ spentUnits: 0, reservedUnits: toUnits(0.9) });
    });

    it('refuses with a retryable 429 while reservations in flight are in the way', async () => {
      const { service } = setup();
      const p = principal({ monthlyBudgetUsd: 0.5 }, { requestsPerMinute: 100 });
      const a = await service.admit(p, est(10, 0.4));
      const e = await refusal(service.admit(p, est(10, 0.4)));
      expect(e.getStatus()).toBe(429);
      expect(e.body.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
      expect(e.headers).toMatchObject({ 'retry-after': '1', 'x-should-retry': 'true', 'x-ratelimit-limit-requests': '100' });
      expect(e.body.error.message).toContain('monthly budget of API key "alice" is $0.50 per UTC calendar month');
      expect(e.body.error.message).toContain('$0.40 reserved by requests in flight');
      a.release();
      await expect(service.admit(p, est(10, 0.4))).resolves.toBeDefined();
    });

    it('refuses with insufficient_quota, no Retry-After, once settled spend leaves less than the minimum', async () => {
      const { service } = setup();
      const p = principal({ monthlyBudgetUsd: 0.5 }, { requestsPerMinute: 100 });
      (await service.admit(p, est(10, 0.4))).settle({ tokens: 10, costUsd: 0.45 });
      const e = await refusal(service.admit(p, { ...est(10, 0.4), minCostUsd: 0.1 }));
      expect(e.getStatus()).toBe(429);
      expect(e.body.error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' });
      expect(e.headers['retry-after']).toBeUndefined();
      expect(e.headers['x-should-retry']).toBe('false');
      expect(e.headers['x-ratelimit-limit-requests']).toBe('100');
      expect(e.body.error.message).toContain('monthly budget of API key "alice" is $0.50 per UTC calendar month');
      expect(e.body.error.message).toContain('$0.45 is spent');
      expect(e.body.error.message).toContain("less than this request's useful minimum ($0.10)");
      expect(e.body.error.message).toContain('resets at 2026-02-01T00:00:00.000Z');
    });

    it('clamps the reservation to what is left when nothing is in flight and the minimum fits', async () => {
      const { service } = setup();
      const p = principal({ dailyBudgetUsd: 1 });
      (await service.admit(p, est(10, 0.3))).settle({ tokens: 10, costUsd: 0.3 });
      const a = await service.admit(p, { ...est(10, 0.9), minCostUsd: 0.2 });
      expect(a).toMatchObject({ clamped: true, reservedUsd: 0.7 });
      expect((await service.counters(T1, K1)).key.daily).toEqual({ spentUnits: toUnits(0.3), reservedUnits: toUnits(0.7) });
      // a request whose worst case fits is never clamped
      a.release();
      expect(await service.admit(p, { ...est(10, 0.5), minCostUsd: 0.1 })).toMatchObject({ clamped: false, reservedUsd: 0.5 });
    });

    it('settles actual cost, releases the rest, and counts each admission once', async () => {
      const { service } = setup();
      const p = principal({}, { dailyBudgetUsd: 1 });
      const a = await service.admit(p, est(10, 0.6));
      await refusal(service.admit(p, est(10, 0.6)));
      a.settle({ tokens: 10, costUsd: 0.25 });
      a.settle({ tokens: 10, costUsd: 0.25 });
      a.release();
      expect((await service.counters(T1, K1)).tenant.daily).toEqual({ spentUnits: toUnits(0.25), reservedUnits: 0 });
      await expect(service.admit(p, est(10, 0.6))).resolves.toBeDefined();
    });

    it('starts from the ledger, once per tenant and period however many requests arrive', async () => {
      const { service, ledger } = setup();
      ledger.spend = { tenant: { day: toUnits(0.95), month: toUnits(3) }, keys: new Map([[K1, { day: toUnits(0.95), month: toUnits(3) }]]) };
      const p = principal({}, { dailyBudgetUsd: 1 });
      const first = await Promise.allSettled(Array.from({ length: 5 }, () => service.admit(p, est(10, 0.01))));
      expect(ledger.calls).toHaveLength(1);
      expect(first.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
      const e = await refusal(service.admit(p, est(10, 0.01)));
      expect(e.body.error.message).toContain('$0.95 is spent');
      expect(ledger.calls).toHaveLength(1);
    });

    it('rolls over at UTC midnight and at the start of the month, seeding each new period once', async () => {
      const { service, ledger, clock } = setup(Date.parse('2026-01-30T23:00:00Z'));
      const p = principal({}, { dailyBudgetUsd: 1, monthlyBudgetUsd: 1.5 });
      (await service.admit(p, est(1, 1))).settle({ tokens: 1, costUsd: 1 });
      let e = await refusal(service.admit(p, est(1, 0.01)));
      expect(e.body.error.message).toContain('daily budget of tenant "acme"');
      expect(e.body.error.message).toContain('resets at 2026-01-31T00:00:00.000Z');

      clock.now = Date.parse('2026-01-31T00:00:01Z'); // a new day, the same month
      (await service.admit(p, est(1, 0.5))).settle({ tokens: 1, costUsd: 0.5 });
      e = await refusal(service.admit(p, est(1, 0.01)));
      expect(e.body.error.message).toContain('monthly budget of tenant "acme"');
      expect(e.body.error.message).toContain('resets at 2026-02-01T00:00:00.000Z');

      clock.now = Date.parse('2026-02-01T00:00:01Z');
      await expect(service.admit(p, est(1, 0.9))).resolves.toBeDefined();
      expect(ledger.calls.map((c) => [c.dayStart.toISOString(), c.monthStart.toISOString()])).toEqual([
        ['2026-01-30T00:00:00.000Z', '2026-01-01T00:00:00.000Z'],
        ['2026-01-31T00:00:00.000Z', '2026-01-01T00:00:00.000Z'],
        ['2026-02-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z'],
      ]);
    });

    it('a zero budget blocks every request', async () => {
      const { service } = setup();
      const e = await refusal(service.admit(principal({ dailyBudgetUsd: 0 }), est(1, 0)));
      expect(e.body.error.code).toBe('insufficient_quota');
    });
  });

  it('reports refusals by kind and the share of each tenant budget in use to the metrics', async () => {
    const calls: string[] = [];
    const observer = {
      rateLimited: (t: string, kind: string) => calls.push(`limited ${t} ${kind}`),
      budgetRefused: (t: string, period: string) => calls.push(`budget ${t} ${period}`),
      budgetUtilisation: (t: string, period: string, ratio: number) => calls.push(`ratio ${t} ${period} ${ratio}`),
    };
    const clock = () => Date.parse('2026-01-10T12:00:00Z');
    const service = new LimitsService(
      { upstreamTotalTimeoutMs: 1000 } as AppConfig,
      new MemoryLimitStore(clock),
      new FakeLedger() as unknown as UsageRepository,
      clock,
      observer,
    );
    const p = principal({ concurrentRequests: 1 }, { dailyBudgetUsd: 1, monthlyBudgetUsd: 4 });
    const a = await service.admit(p, est(1, 0.5));
    await refusal(service.admit(p, est(1, 0.1)));
    await refusal(service.admit(p, est(1, 0.6)));
    a.settle({ tokens: 1, costUsd: 0.95 });
    await service.idle();
    await refusal(service.admit(p, est(1, 0.1)));
    expect(calls).toEqual([
      'ratio acme daily 0.5',
      'ratio acme monthly 0.125',
      'limited acme concurrency',
      'ratio acme daily 0.5',
      'ratio acme monthly 0.125',
      // held by the request in flight: a retryable limit, not a spent budget
      'limited acme budget',
      'ratio acme daily 0.5',
      'ratio acme monthly 0.125',
      'budget acme daily',
      'ratio acme daily 0.95',
      'ratio acme monthly 0.2375',
    ]);
  });

  it('answers 503 rather than skipping limits when the store is unreachable', async () => {
    const broken: LimitStore = {
      kind: 'redis',
      admit: async () => {
        throw new Error('connect ECONNREFUSED');
      },
      finish: async () => undefined,
      seed: async () => undefined,
      read: async () => ({
        key: { daily: { spentUnits: 0, reservedUnits: 0 }, monthly: { spentUnits: 0, reservedUnits: 0 } },
        tenant: { daily: { spentUnits: 0, reservedUnits: 0 }, monthly: { spentUnits: 0, reservedUnits: 0 } },
      }),
      renew: async () => undefined,
      close: async () => undefined,
    };
    const service = new LimitsService({ upstreamTotalTimeoutMs: 1000 } as AppConfig, broken, new FakeLedger() as unknown as UsageRepository, Date.now);
    const e = await refusal(service.admit(principal({ requestsPerMinute: 1 }), est(1)));
    expect(e.getStatus()).toBe(503);
  });
});
