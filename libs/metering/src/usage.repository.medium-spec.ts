import { UsageRecordEntity } from '@gw/db';
import { MediumDatabase, mediumDatabase } from '@gw/testing';
import { randomUUID } from 'node:crypto';
import type { AppConfig } from '@gw/config';
import { LedgerWriter } from './ledger.writer';
import { UsageRepository, UsageRow } from './usage.repository';

// Starting a PGlite copy takes seconds on a loaded machine.
jest.setTimeout(60_000);

describe('UsageRepository on a real database', () => {
  let db: MediumDatabase;
  let usage: UsageRepository;

  beforeAll(async () => {
    db = await mediumDatabase();
    usage = new UsageRepository(db.dataSource.getRepository(UsageRecordEntity));
  });
  afterAll(() => db?.close());

  const A = randomUUID();
  const B = randomUUID();
  const KA1 = randomUUID();
  const KA2 = randomUUID();
  const KB1 = randomUUID();
  let n = 0;
  const row = (over: Partial<UsageRow>): UsageRow => ({
    requestId: `req_${++n}_${randomUUID()}`, clientRequestId: null, tenantId: A, keyId: KA1, routeId: null, providerId: null,
    endpoint: 'chat', requestedModel: 'gpt-4o', upstreamModel: null, status: 200, errorCode: null, inputTokens: 10, outputTokens: 5,
    cachedTokens: 0, costUsd: 0.25, latencyMs: 100, ttfbMs: null, streamed: false, attempts: 1,
    startedAt: new Date('2026-03-10T12:00:00Z'), finishedAt: new Date('2026-03-10T12:00:01Z'), ...over,
  });

  it('inserts a batch in one go; the same ids again are skipped, and the returning form names only the new ones', async () => {
    const t = randomUUID();
    const [a, b, c] = [row({ tenantId: t }), row({ tenantId: t }), row({ tenantId: t })];
    await usage.insertBatch([a, b]);
    await usage.insertBatch([a, b]);
    expect(await usage.insertBatchReturningNew([b, c])).toEqual([c.requestId]);
    expect(await usage.insertBatchReturningNew([a, b, c])).toEqual([]);
    const [total] = await usage.report({ tenantId: t }, {});
    expect(total).toMatchObject({ requests: 3, inputTokens: 30, outputTokens: 15, costUsd: 0.75 });
    // A retried row never overwrites the first one's values.
    await usage.insertBatch([{ ...a, costUsd: 99 }]);
    expect((await usage.report({ tenantId: t }, {}))[0].costUsd).toBe(0.75);
    await usage.insertBatch([]);
    expect(await usage.insertBatchReturningNew([])).toEqual([]);
  });

  it('stores the columns as given: nulls, numerics at 1e-8, client ids apart from request ids', async () => {
    const t = randomUUID();
    const x = row({ tenantId: t, keyId: null, clientRequestId: 'client-1', costUsd: 0.12345678, latencyMs: null, ttfbMs: 7, streamed: true, status: 429, errorCode: 'rate_limited' });
    await usage.insertBatch([x]);
    const [stored] = await db.dataSource.query(`SELECT * FROM usage_records WHERE request_id = $1`, [x.requestId]);
    expect(stored).toMatchObject({ tenant_id: t, key_id: null, client_request_id: 'client-1', latency_ms: null, ttfb_ms: 7, streamed: true, status: 429, error_code: 'rate_limited' });
    expect(Number(stored.cost_usd)).toBe(0.12345678);
  });

  it('refuses a row the columns cannot hold with a data exception (what LedgerWriter splits batches on)', async () => {
    await expect(usage.insertBatch([row({ tenantId: 'not-a-uuid' })])).rejects.toMatchObject({ code: expect.stringMatching(/^22/) });
  });

  describe('reports and spend', () => {
    beforeAll(async () => {
      await usage.insertBatch([
        row({ tenantId: A, keyId: KA1, requestedModel: 'gpt-4o', costUsd: 1, startedAt: new Date('2026-03-10T08:00:00Z') }),
        row({ tenantId: A, keyId: KA1, requestedModel: 'gpt-4o-mini', costUsd: 0.5, status: 500, startedAt: new Date('2026-03-09T23:59:59Z') }),
        row({ tenantId: A, keyId: KA2, requestedModel: 'gpt-4o', costUsd: 2, cachedTokens: 3, startedAt: new Date('2026-03-01T00:00:00Z') }),
        row({ tenantId: A, keyId: null, requestedModel: 'gpt-4o', costUsd: 0.125, startedAt: new Date('2026-03-10T00:00:00Z') }),
        // Outside March: before it, and at the month's end (excluded: [start, end)).
        row({ tenantId: A, keyId: KA1, costUsd: 100, startedAt: new Date('2026-02-28T23:59:59Z') }),
        row({ tenantId: A, keyId: KA1, costUsd: 200, startedAt: new Date('2026-04-01T00:00:00Z') }),
        // Another tenant's, in the same period.
        row({ tenantId: B, keyId: KB1, costUsd: 7, startedAt: new Date('2026-03-10T09:00:00Z') }),
      ]);
    });

    const march = { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-04-01T00:00:00Z') };

    it('groups by day (UTC) and model, ordered by the groups, for one tenant only', async () => {
      const rows = await usage.report({ tenantId: A }, { ...march, groupBy: ['day', 'model'] });
      expect(rows.map((r) => [r.day, r.model, r.requests, r.errors, r.costUsd])).toEqual([
        ['2026-03-01', 'gpt-4o', 1, 0, 2],
        ['2026-03-09', 'gpt-4o-mini', 1, 1, 0.5],
        ['2026-03-10', 'gpt-4o', 2, 0, 1.125],
      ]);
    });

    it('groups by key, filters by key and model, and sums tokens as numbers', async () => {
      const byKey = await usage.report({ tenantId: A }, { ...march, groupBy: ['key'] });
      expect(Object.fromEntries(byKey.map((r) => [r.keyId ?? 'none', r.costUsd]))).toEqual({ [KA1]: 1.5, [KA2]: 2, none: 0.125 });
      const [one] = await usage.report({ tenantId: A }, { ...march, keyId: KA2, model: 'gpt-4o' });
      expect(one).toEqual({ requests: 1, errors: 0, inputTokens: 10, outputTokens: 5, cachedTokens: 3, costUsd: 2 });
    });

    it("reads every tenant's rows only with the 'all' scope, and never without a scope", async () => {
      const all = await usage.report('all', { ...march, groupBy: ['tenant'] });
      const byTenant = Object.fromEntries(all.map((r) => [r.tenantId, r.costUsd]));
      expect(byTenant[A]).toBe(3.625);
      expect(byTenant[B]).toBe(7);
      const [onlyB] = await usage.report({ tenantId: B }, march);
      expect(onlyB.costUsd).toBe(7);
      await expect(usage.report({} as { tenantId: string }, {})).rejects.toThrow(/tenant scope needs a tenantId/);
    });

    it('sums period spend per key: the month in [start, end), the day from its start; other tenants never', async () => {
      const spend = await usage.spendByKey(A, { dayStart: new Date('2026-03-10T00:00:00Z'), monthStart: march.from, monthEnd: march.to });
      const byKey = Object.fromEntries(spend.map((r) => [r.keyId ?? 'none', { day: r.dayUsd, month: r.monthUsd }]));
      expect(byKey).toEqual({ [KA1]: { day: 1, month: 1.5 }, [KA2]: { day: 0, month: 2 }, none: { day: 0.125, month: 0.125 } });
      expect(await usage.spendByKey(randomUUID(), { dayStart: march.from, monthStart: march.from, monthEnd: march.to })).toEqual([]);
      const b = await usage.spendByKey(B, { dayStart: new Date('2026-03-10T00:00:00Z'), monthStart: march.from, monthEnd: march.to });
      expect(b).toEqual([{ keyId: KB1, dayUsd: 7, monthUsd: 7 }]);
    });
  });

  describe('LedgerWriter over it', () => {
    it('writes every good row of a batch the database refuses one row of, and drops only that row', async () => {
      const w = new LedgerWriter(usage, { ledgerFlushMs: 60_000, ledgerBatchSize: 100 } as AppConfig);
      for (const level of ['error', 'warn', 'log'] as const) jest.spyOn((w as any).logger, level).mockImplementation(() => undefined);
      const t = randomUUID();
      const rows = Array.from({ length: 7 }, () => row({ tenantId: t }));
      // Passes the writer's own clamping, refused by the uuid column (SQLSTATE 22P02).
      rows[4] = { ...rows[4], keyId: 'not-a-uuid' };
      for (const r of rows) w.record(r);
      expect(await w.drain()).toBe(0);
      expect(w.stats).toMatchObject({ written: 6, poisonRows: 1, failedFlushes: 0 });
      const [total] = await usage.report({ tenantId: t }, {});
      expect(total.requests).toBe(6);
      // A replay of the same rows writes nothing twice, and names nothing as new.
      expect(await w.insertNow(rows.filter((_, i) => i !== 4))).toEqual(new Set());
    });
  });
});
