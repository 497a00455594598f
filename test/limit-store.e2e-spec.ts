import { randomUUID } from 'node:crypto';
import { AdmitPlan, LimitStore, MemoryLimitStore, RedisLimitStore, ScopeLimits } from '@gw/limits';

jest.setTimeout(30_000);

/**
 * The two limit stores behave the same: the in-memory one always, the Redis one against the real Redis in
 * TEST_REDIS_URL (skipped, with a note, without it). Straight at the store, below the HTTP layer.
 */
const REDIS = process.env.TEST_REDIS_URL;
// scripts/test.mjs sets REQUIRE_REDIS=1 for the CI run that has Redis: skipping there would be a silent pass.
if (!REDIS && process.env.REQUIRE_REDIS === '1') throw new Error('limit-store.e2e-spec: REQUIRE_REDIS=1 but TEST_REDIS_URL is not set');
if (!REDIS) {
  console.warn('limit-store.e2e-spec: TEST_REDIS_URL is not set, so the Redis store cases are SKIPPED (not passed).');
}

const NONE: ScopeLimits = { rpm: null, tpm: null, concurrency: null, dailyUnits: null, monthlyUnits: null };

function plan(tenantId: string, over: Partial<AdmitPlan> = {}): AdmitPlan {
  return {
    requestId: randomUUID(),
    tenantId,
    keyId: 'k1',
    tokens: 10,
    costUnits: 3,
    day: '2026-01-10',
    month: '2026-01',
    dayTtlMs: 60_000,
    monthTtlMs: 60_000,
    leaseMs: 60_000,
    key: NONE,
    tenant: NONE,
    ...over,
    minCostUnits: over.minCostUnits ?? over.costUnits ?? 3,
  };
}
const noSpend = { tenant: { day: 0, month: 0 }, keys: new Map<string, { day: number; month: number }>() };

const stores: [string, () => LimitStore][] = [['memory', () => new MemoryLimitStore()]];
if (REDIS) stores.push(['redis', () => new RedisLimitStore(REDIS)]);

describe.each(stores)('%s limit store', (kind, make) => {
  let store: LimitStore;
  beforeAll(() => {
    store = make();
  });
  afterAll(async () => {
    await store.close();
  });

  it('asks for the ledger first when budgets apply, and never lowers a counter when seeded', async () => {
    const t = randomUUID();
    const budget = { ...NONE, dailyUnits: 100 };
    expect((await store.admit(plan(t, { tenant: budget }))).status).toBe('seed');
    // a settle that lands before seeding is kept: seeding takes the larger of it and the ledger
    const free = (await store.admit(plan(t))).ticket!;
    await store.finish(free, 10, 40);
    await store.seed(t, '2026-01-10', '2026-01', 60_000, 60_000, { tenant: { day: 25, month: 25 }, keys: new Map([['k1', { day: 25, month: 25 }]]) });
    expect((await store.read(t, 'k1', '2026-01-10', '2026-01')).tenant.daily.spentUnits).toBe(40);
    // a second seed of the same period (another replica) changes nothing
    await store.seed(t, '2026-01-10', '2026-01', 60_000, 60_000, { tenant: { day: 90, month: 90 }, keys: new Map() });
    expect((await store.read(t, 'k1', '2026-01-10', '2026-01')).tenant.daily.spentUnits).toBe(40);
    expect((await store.admit(plan(t, { tenant: budget }))).status).toBe('ok');
  });

  it('lets exactly as many concurrent admissions through as the budget holds', async () => {
    const t = randomUUID();
    await store.seed(t, '2026-01-10', '2026-01', 60_000, 60_000, noSpend);
    const p = { tenant: { ...NONE, dailyUnits: 10, rpm: 1000 }, key: { ...NONE, monthlyUnits: 1000, concurrency: 100, tpm: 1_000_000 } };
    const results = await Promise.all(Array.from({ length: 50 }, () => store.admit(plan(t, p))));
    expect(results.filter((r) => r.status === 'ok')).toHaveLength(3);
    const refusals = results.filter((r) => r.status === 'refused').map((r) => r.refusal);
    expect(refusals.every((r) => r?.kind === 'budget' && r.scope === 'tenant' && r.period === 'daily')).toBe(true);
    const c = await store.read(t, 'k1', '2026-01-10', '2026-01');
    expect(c.tenant.daily).toEqual({ spentUnits: 0, reservedUnits: 9 });
    expect(c.key.monthly).toEqual({ spentUnits: 0, reservedUnits: 9 });
    for (const r of results) if (r.ticket) await store.finish(r.ticket, 5, 2);
    expect((await store.read(t, 'k1', '2026-01-10', '2026-01')).tenant.daily).toEqual({ spentUnits: 6, reservedUnits: 0 });
  });

  it('counts requests per minute in a sliding window and reports when the next slot frees', async () => {
    const t = randomUUID();
    const p = { key: { ...NONE, rpm: 3 } };
    const used = [];
    for (let i = 0; i < 3; i++) used.push((await store.admit(plan(t, p))).rpm.key?.used);
    expect(used).toEqual([1, 2, 3]);
    const r = await store.admit(plan(t, p));
    expect(r.refusal).toMatchObject({ kind: 'requests', scope: 'key' });
    expect(r.refusal && 'retryAfterMs' in r.refusal && r.refusal.retryAfterMs).toBeGreaterThan(55_000);
  });

  it('budget rule: retryable while reservations are in flight, clamped when nothing is, final below the minimum', async () => {
    const t = randomUUID();
    await store.seed(t, '2026-01-10', '2026-01', 60_000, 60_000, noSpend);
    const p = { costUnits: 60, minCostUnits: 10, tenant: { ...NONE, dailyUnits: 100 } };
    const a = await store.admit(plan(t, p));
    expect(a.ticket?.costUnits).toBe(60); // fits whole
    // 40 left but 60 in flight: refused, the counters say why (the service turns it into a retryable 429)
    const b = await store.admit(plan(t, p));
    expect(b.refusal).toEqual({ kind: 'budget', scope: 'tenant', period: 'daily', spentUnits: 0, reservedUnits: 60 });
    await store.finish(a.ticket!, 1, 45);
    // nothing in flight, 55 left: clamped to it, and its lease (Redis) carries the clamped cost
    const c = await store.admit(plan(t, { ...p, leaseMs: 200 }));
    expect(c.status).toBe('ok');
    expect(c.ticket?.costUnits).toBe(55);
    expect((await store.read(t, 'k1', '2026-01-10', '2026-01')).tenant.daily).toEqual({ spentUnits: 45, reservedUnits: 55 });
    await store.finish(c.ticket!, 1, 50);
    // 5 left, less than the minimum of 10: final (nothing in flight, spent 95)
    const d = await store.admit(plan(t, p));
    expect(d.refusal).toEqual({ kind: 'budget', scope: 'tenant', period: 'daily', spentUnits: 95, reservedUnits: 0 });
    // a request whose own worst case fits what is left still passes
    expect((await store.admit(plan(t, { ...p, costUnits: 5, minCostUnits: 5 }))).ticket?.costUnits).toBe(5);
  });

  // Leases are a Redis-store feature: the memory store dies with its process. Not declared at all for it, so that
  // a full run has no skipped test.
  (kind === 'redis' ? it : ((() => undefined) as unknown as typeof it))(
    'gives back the reservation of a request whose replica died, once its lease ran out',
    async () => {
      const t = randomUUID();
      await store.seed(t, '2026-01-10', '2026-01', 60_000, 60_000, noSpend);
      const p = { leaseMs: 200, costUnits: 6, tenant: { ...NONE, dailyUnits: 10, concurrency: 1 } };
      const orphan = (await store.admit(plan(t, p))).ticket!; // never finished: its process "crashed"
      expect((await store.admit(plan(t, p))).status).toBe('refused');
      await new Promise((r) => setTimeout(r, 300));
      const next = await store.admit(plan(t, p));
      expect(next.status).toBe('ok');
      expect((await store.read(t, 'k1', '2026-01-10', '2026-01')).tenant.daily.reservedUnits).toBe(6);
      // the orphan's late finish does not give back a second time
      await store.finish(orphan, 0, 0);
      expect((await store.read(t, 'k1', '2026-01-10', '2026-01')).tenant.daily.reservedUnits).toBe(6);
    },
  );

  (kind === 'redis' ? it : ((() => undefined) as unknown as typeof it))('keeps a renewed lease alive, and never brings back one that ran out', async () => {
    const t = randomUUID();
    await store.seed(t, '2026-01-10', '2026-01', 60_000, 60_000, noSpend);
    const p = { leaseMs: 400, costUnits: 6, tenant: { ...NONE, dailyUnits: 10 }, key: { ...NONE, concurrency: 1 } };
    const live = (await store.admit(plan(t, p))).ticket!;
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 150));
      await store.renew([live], 400);
    }
    // 600 ms after admission, past its first lease: still held (slot and reservation)
    expect((await store.admit(plan(t, { ...p, costUnits: 1 }))).refusal).toMatchObject({ kind: 'concurrency' });
    expect((await store.read(t, 'k1', '2026-01-10', '2026-01')).tenant.daily.reservedUnits).toBe(6);
    // not renewed any more: it runs out, and a late renewal does not resurrect it
    await new Promise((r) => setTimeout(r, 500));
    expect((await store.admit(plan(t, { ...p, costUnits: 1 }))).status).toBe('ok');
    await store.renew([live], 60_000);
    expect((await store.read(t, 'k1', '2026-01-10', '2026-01')).tenant.daily.reservedUnits).toBe(1);
    await store.finish(live, 0, 0);
    expect((await store.read(t, 'k1', '2026-01-10', '2026-01')).tenant.daily.reservedUnits).toBe(1);
  });
});
