import OpenAI from 'openai';
import { randomBytes } from 'node:crypto';
import { LimitsService, toUnits } from '@gw/limits';
import { FakeProvider, Stack, eventually, startGatewayReplica, startStack } from '@gw/testing';

jest.setTimeout(90_000);

/**
 * Limits and budgets end to end: openai SDK / fetch → gateway → FakeProvider, on PGlite or PostgreSQL,
 * with counters in memory or (TEST_REDIS_URL) in Redis.
 * `metered-model` costs $0 per input token and $20,000 per million output tokens, so a reply of the fake's
 * default 5 output tokens costs exactly $0.10, and `max_tokens: 5` makes the reservation exactly that too.
 */
const MODEL = 'metered-model';
const OUTPUT_PER_M = 20_000;
const COST = 0.1;
const costOf = (outputTokens: number) => (outputTokens * OUTPUT_PER_M) / 1_000_000;

describe(`limits and budgets (${process.env.TEST_REDIS_URL ? 'Redis' : 'in-memory'} counters)`, () => {
  let stack: Stack;
  let fake: FakeProvider;
  let limits: LimitsService;

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai', models: ['gpt-4o-mini', MODEL] });
    stack = await startStack();
    limits = stack.gateway.get(LimitsService);
    const provider = await stack.api('POST', '/admin/providers', { name: 'openai', kind: 'openai', baseUrl: fake.baseUrl });
    expect((await stack.api('POST', '/admin/routes', { modelPattern: MODEL, targets: [{ providerId: provider.body.id }] })).status).toBe(201);
    expect((await stack.api('POST', '/admin/prices', { modelPattern: MODEL, inputPerM: 0, outputPerM: OUTPUT_PER_M })).status).toBe(201);
  });

  afterAll(async () => {
    await stack?.close();
    await fake?.close();
  });

  beforeEach(() => {
    fake.reset();
    fake.options.chunkDelayMs = 0;
    fake.options.streamChunks = 5;
  });

  /** A fresh tenant and key with the given limits (fresh ids: no counters shared with other tests). */
  async function tenantWith(tenantLimits: object, keyLimits: object = {}) {
    const t = await stack.api('POST', '/admin/tenants', { name: `lim-${randomBytes(4).toString('hex')}`, limits: tenantLimits });
    expect(t.status).toBe(201);
    const k = await stack.api('POST', `/admin/tenants/${t.body.id}/keys`, { name: 'k', limits: keyLimits });
    expect(k.status).toBe(201);
    return { tenantId: t.body.id as string, keyId: k.body.id as string, secret: k.body.secret as string };
  }

  async function chat(secret: string, body: object, opts: { requestId?: string; base?: string; signal?: AbortSignal } = {}) {
    const res = await fetch(`${opts.base ?? stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', ...(opts.requestId ? { 'x-request-id': opts.requestId } : {}) },
      body: JSON.stringify(body),
      signal: opts.signal,
    });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, headers: res.headers, body: json };
  }

  const small = (content = 'hi') => ({ model: MODEL, messages: [{ role: 'user', content }], max_tokens: 5 });
  /** The gateway's estimate for a body: bytes / 4 for the prompt plus max_tokens. */
  const estimateOf = (body: { max_tokens: number }) => Math.ceil(Buffer.byteLength(JSON.stringify(body)) / 4) + body.max_tokens;

  async function ledgerRows(tenantId: string) {
    await stack.flushLedger();
    return stack.sql(`SELECT * FROM usage_records WHERE tenant_id = $1 ORDER BY started_at`, [tenantId]);
  }
  const units = (rows: { cost_usd: string }[]) => rows.reduce((s, r) => s + toUnits(Number(r.cost_usd)), 0);

  describe('race: 64 concurrent requests on a budget for 10', () => {
    it('admits exactly 10 when the reservation is exact; the ledger, the counters and /spend agree', async () => {
      const { tenantId, keyId, secret } = await tenantWith({ dailyBudgetUsd: 1 });
      const results = await Promise.all(Array.from({ length: 64 }, () => chat(secret, small('race'))));
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 429);
      expect(ok).toHaveLength(10);
      expect(refused).toHaveLength(54);
      // Refused while the 10 were in flight: retryable (their money may come back); once their settled spend
      // reached the budget: insufficient_quota, final.
      const quota = refused.filter((r) => r.body.error.code === 'insufficient_quota');
      for (const r of refused) {
        if (r.body.error.code === 'insufficient_quota') {
          expect(r.body.error.type).toBe('insufficient_quota');
          expect(r.headers.get('retry-after')).toBeNull();
        } else {
          expect(r.body.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
          expect(r.body.error.message).toContain('reserved by requests in flight');
          expect(r.headers.get('retry-after')).toBe('1');
        }
      }
      const settled = ok.reduce((s, r) => s + costOf(r.body.usage.completion_tokens), 0);
      expect(settled).toBeCloseTo(1, 8);

      const rows = await ledgerRows(tenantId);
      expect(rows).toHaveLength(64);
      expect(rows.filter((r) => r.status === 429 && r.error_code === 'insufficient_quota')).toHaveLength(quota.length);
      expect(rows.filter((r) => r.status === 429 && r.error_code === 'rate_limit_exceeded')).toHaveLength(54 - quota.length);
      expect(units(rows)).toBe(toUnits(settled));

      await limits.idle();
      const live = await limits.counters(tenantId, keyId);
      expect(live.tenant.daily).toEqual({ spentUnits: units(rows), reservedUnits: 0 });
      expect(live.tenant.monthly).toEqual({ spentUnits: units(rows), reservedUnits: 0 });

      const spend = await stack.api('GET', `/admin/tenants/${tenantId}/spend`);
      expect(spend.status).toBe(200);
      expect(spend.body.tenant.daily).toMatchObject({ budgetUsd: 1, spentUsd: 1, remainingUsd: 0, exhausted: true });
      expect(spend.body.tenant.monthly).toMatchObject({ budgetUsd: null, spentUsd: 1, remainingUsd: null, exhausted: false });
      expect(spend.body.keys).toEqual([expect.objectContaining({ keyId, daily: expect.objectContaining({ spentUsd: 1, budgetUsd: null }) })]);
    });

    it('when replies cost more than reserved, overshoots by at most the reservations in flight', async () => {
      const { tenantId, keyId, secret } = await tenantWith({ dailyBudgetUsd: 1 });
      const actualTokens = 8; // reserved 5 output tokens, used 8: $0.16 instead of $0.10
      fake.script(...Array.from({ length: 64 }, () => ({ usage: { input: 3, output: actualTokens } })));
      const results = await Promise.all(Array.from({ length: 64 }, () => chat(secret, small('race'))));
      const ok = results.filter((r) => r.status === 200);
      expect(results.filter((r) => r.status === 429).every((r) => ['insufficient_quota', 'rate_limit_exceeded'].includes(r.body.error.code))).toBe(true);
      // never more than the budget's worth of reservations, never fewer than the budget's worth of actual cost
      expect(ok.length).toBeLessThanOrEqual(10);
      expect(ok.length).toBeGreaterThanOrEqual(Math.floor(1 / costOf(actualTokens)));
      const settled = ok.reduce((s, r) => s + costOf(r.body.usage.completion_tokens), 0);
      const overshoot = settled - 1;
      expect(overshoot).toBeLessThanOrEqual(ok.length * (costOf(actualTokens) - COST) + 1e-9);

      const rows = await ledgerRows(tenantId);
      expect(rows).toHaveLength(64);
      expect(units(rows)).toBe(toUnits(settled));
      await limits.idle();
      expect((await limits.counters(tenantId, keyId)).tenant.daily).toEqual({ spentUnits: toUnits(settled), reservedUnits: 0 });
      const spend = await stack.api('GET', `/admin/tenants/${tenantId}/spend`);
      expect(spend.body.tenant.daily.spentUsd).toBeCloseTo(settled, 8);
      expect(spend.body.tenant.daily.exhausted).toBe(true);
    });
  });

  describe('streams', () => {
    it("count a stream's actual tokens against tokens-per-minute and its cost against the budget", async () => {
      const { tenantId, keyId, secret } = await tenantWith({}, { tokensPerMinute: 300, dailyBudgetUsd: 20 });
      fake.script({ usage: { input: 20, output: 50 } });
      const streamBody = { ...small('stream please'), max_tokens: 10, stream: true };
      const s = await chat(secret, streamBody);
      expect(s.status).toBe(200);
      expect(String(s.body)).toContain('data: [DONE]');
      // reserved: its estimate; remaining as the stream started
      expect(Number(s.headers.get('x-ratelimit-remaining-tokens'))).toBe(300 - estimateOf(streamBody));
      await eventually(async () => (await ledgerRows(tenantId)).length === 1, 5000, 50, "the stream's ledger row");
      await limits.idle();

      // settled: 20 + 50 actual tokens instead of the estimate
      const next = small('next');
      const r = await chat(secret, next);
      expect(r.status).toBe(200);
      expect(Number(r.headers.get('x-ratelimit-remaining-tokens'))).toBe(300 - 70 - estimateOf(next));
      expect(r.headers.get('x-ratelimit-limit-tokens')).toBe('300');
      expect(r.headers.get('x-ratelimit-reset-tokens')).toMatch(/^(\d+(\.\d+)?s|\d+ms)$/);

      const big = { ...small('too big'), max_tokens: 250 };
      const refused = await chat(secret, big);
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({ type: 'tokens', code: 'rate_limit_exceeded' });
      expect(refused.body.error.message).toContain('tokens per min (TPM): Limit 300');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

      await limits.idle();
      const rows = await ledgerRows(tenantId);
      expect(rows.map((x) => x.status)).toEqual([200, 200, 429]);
      expect(rows[0]).toMatchObject({ streamed: true, input_tokens: 20, output_tokens: 50 });
      expect((await limits.counters(tenantId, keyId)).key.daily).toEqual({ spentUnits: units(rows), reservedUnits: 0 });
      expect(units(rows)).toBe(toUnits(costOf(50) + costOf(5)));
    });

    it('count what was streamed before the client disconnected (499), in tokens and in spend', async () => {
      const { tenantId, keyId, secret } = await tenantWith({}, { tokensPerMinute: 5000, dailyBudgetUsd: 5 });
      fake.options.streamChunks = 20;
      fake.options.chunkDelayMs = 100;
      const ac = new AbortController();
      const res = await fetch(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'a long story' }], max_tokens: 100, stream: true }),
        signal: ac.signal,
      });
      expect(res.status).toBe(200);
      const requestId = res.headers.get('x-request-id');
      const reader = res.body!.getReader();
      let seen = '';
      while ((seen.match(/"content":"[^"]/g) ?? []).length < 3) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += Buffer.from(value).toString('utf8');
      }
      ac.abort();
      await reader.cancel().catch(() => undefined);

      const row = await eventually(
        async () => (await ledgerRows(tenantId)).find((x) => x.request_id === requestId),
        5000,
        50,
        "the aborted stream's ledger row",
      );
      expect(row).toMatchObject({ status: 499, error_code: 'client_closed_request', streamed: true });
      expect(row.output_tokens).toBeGreaterThanOrEqual(3);
      expect(row.output_tokens).toBeLessThan(20);
      expect(Number(row.cost_usd)).toBeCloseTo(costOf(row.output_tokens), 8);

      await limits.idle();
      expect((await limits.counters(tenantId, keyId)).key.daily).toEqual({ spentUnits: toUnits(Number(row.cost_usd)), reservedUnits: 0 });
      const spend = await stack.api('GET', `/admin/tenants/${tenantId}/spend`);
      expect(spend.body.keys[0].daily.spentUsd).toBeCloseTo(Number(row.cost_usd), 8);
      expect(spend.body.keys[0].daily.budgetUsd).toBe(5);

      const next = small('after the abort');
      const r = await chat(secret, next);
      expect(Number(r.headers.get('x-ratelimit-remaining-tokens'))).toBe(5000 - row.input_tokens - row.output_tokens - estimateOf(next));
    });
  });

  describe('refusals look like OpenAI', () => {
    it('requests per minute: headers on every answer, then 429 rate_limit_exceeded with Retry-After', async () => {
      const { tenantId, secret } = await tenantWith({}, { requestsPerMinute: 2 });
      const a = await chat(secret, small());
      const b = await chat(secret, small());
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(a.headers.get('x-ratelimit-limit-requests')).toBe('2');
      expect([a.headers.get('x-ratelimit-remaining-requests'), b.headers.get('x-ratelimit-remaining-requests')]).toEqual(['1', '0']);
      expect(a.headers.get('x-ratelimit-reset-requests')).toMatch(/^(\d+(\.\d+)?s|1m0s|\d+ms)$/);

      const c = await chat(secret, small());
      expect(c.status).toBe(429);
      expect(c.body.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', param: null });
      expect(c.body.error.message).toMatch(/requests per min \(RPM\): Limit 2, Used 2, Requested 1\. Please try again in /);
      expect(Number(c.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number(c.headers.get('retry-after'))).toBeLessThanOrEqual(60);
      expect(c.headers.get('x-ratelimit-remaining-requests')).toBe('0');

      const sdk = new OpenAI({ apiKey: secret, baseURL: stack.baseURL, maxRetries: 0 });
      await expect(sdk.chat.completions.create(small() as any)).rejects.toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
      const rows = await ledgerRows(tenantId);
      expect(rows.map((x) => [x.status, x.error_code])).toEqual([
        [200, null],
        [200, null],
        [429, 'rate_limit_exceeded'],
        [429, 'rate_limit_exceeded'],
      ]);
    });

    it('tokens per minute: the x-ratelimit-*-tokens headers on a success', async () => {
      const { secret } = await tenantWith({ tokensPerMinute: 100_000 });
      const body = small();
      const r = await chat(secret, body);
      expect(r.status).toBe(200);
      expect(r.headers.get('x-ratelimit-limit-tokens')).toBe('100000');
      expect(r.headers.get('x-ratelimit-remaining-tokens')).toBe(String(100_000 - estimateOf(body)));
      expect(r.headers.get('x-ratelimit-reset-tokens')).toBe('1m0s');
      // no request limit configured: no request headers
      expect(r.headers.get('x-ratelimit-limit-requests')).toBeNull();
    });

    it('concurrent requests: 429 with Retry-After: 1 while the slot is held, admitted once it is free', async () => {
      const { tenantId, secret } = await tenantWith({}, { concurrentRequests: 1 });
      fake.hangNext(1);
      const ac = new AbortController();
      const arrived = fake.received.length;
      const held = chat(secret, small('hold'), { signal: ac.signal }).catch((e: Error) => e);
      await eventually(() => fake.received.length > arrived, 5000, 10, 'the held request to reach the upstream');
      const r = await chat(secret, small('second'));
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('rate_limit_exceeded');
      expect(r.body.error.message).toContain('concurrent requests');
      expect(r.headers.get('retry-after')).toBe('1');
      ac.abort();
      await held;
      await eventually(async () => (await ledgerRows(tenantId)).length === 2, 5000, 50, 'two ledger rows (held 499 + refused 429)');
      await limits.idle();
      expect((await chat(secret, small('third'))).status).toBe(200);
      expect((await ledgerRows(tenantId)).map((x) => x.status).sort()).toEqual([200, 429, 499]);
    });

    it('budget exhausted: 429 insufficient_quota, no Retry-After, naming the budget and when it resets', async () => {
      const { tenantId, secret } = await tenantWith({ dailyBudgetUsd: 0.15, requestsPerMinute: 100 });
      expect((await chat(secret, small())).status).toBe(200);
      const r = await chat(secret, small());
      expect(r.status).toBe(429);
      expect(r.body.error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota', param: null });
      expect(r.headers.get('retry-after')).toBeNull();
      expect(r.headers.get('x-ratelimit-limit-requests')).toBe('100');
      const tomorrow = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1)).toISOString();
      expect(r.body.error.message).toContain('daily budget of tenant');
      expect(r.body.error.message).toContain('$0.15 per UTC day');
      expect(r.body.error.message).toContain(`resets at ${tomorrow}`);
      const sdk = new OpenAI({ apiKey: secret, baseURL: stack.baseURL, maxRetries: 0 });
      await expect(sdk.chat.completions.create(small() as any)).rejects.toMatchObject({ status: 429, code: 'insufficient_quota', type: 'insufficient_quota' });
      const rows = await ledgerRows(tenantId);
      expect(rows.map((x) => x.error_code)).toEqual([null, 'insufficient_quota', 'insufficient_quota']);
      expect(units(rows)).toBe(toUnits(COST));
    });

    it('limits changed through the admin API apply within the cache refresh', async () => {
      const { tenantId, keyId, secret } = await tenantWith({});
      expect((await chat(secret, small())).headers.get('x-ratelimit-limit-requests')).toBeNull();
      expect((await stack.api('PATCH', `/admin/tenants/${tenantId}/keys/${keyId}`, { limits: { requestsPerMinute: 1 } })).status).toBe(200);
      const limited = await eventually(async () => (await chat(secret, small())).headers.get('x-ratelimit-limit-requests') === '1', 5000, 100);
      expect(limited).toBe(true);
      expect((await chat(secret, small())).status).toBe(429);
    });
  });

  it('budget spend survives a restart: a fresh gateway starts its counters from the ledger', async () => {
    const { tenantId, keyId, secret } = await tenantWith({ dailyBudgetUsd: 0.25 });
    expect((await chat(secret, small())).status).toBe(200);
    expect((await chat(secret, small())).status).toBe(200);
    await stack.flushLedger();
    // in-memory counters of its own: only the ledger can tell it what was spent
    const fresh = await startGatewayReplica(stack, { redisUrl: undefined });
    try {
      const r = await chat(secret, small(), { base: fresh.baseURL });
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('insufficient_quota');
      expect(r.body.error.message).toContain('$0.20 is spent');
      expect((await fresh.app.get(LimitsService).counters(tenantId, keyId)).tenant.daily.spentUnits).toBe(toUnits(0.2));
    } finally {
      await fresh.close();
    }
  });
});
