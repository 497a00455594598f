import OpenAI from 'openai';
import { randomBytes } from 'node:crypto';
import { LedgerWriter, UsageRow } from '@gw/metering';
import { FakeProvider, Stack, eventually, startStack } from '@gw/testing';

jest.setTimeout(90_000);

/** List prices (USD per million tokens) from the catalog (@pydantic/genai-prices). */
const PRICES: Record<string, { input: number; output: number }> = {
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4o': { input: 2.5, output: 10 },
};

describe('metering: one ledger row per request, whatever its end; usage reports', () => {
  let stack: Stack;
  let fake: FakeProvider;
  let flaky: FakeProvider;

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai' });
    // failures go to a provider of their own, so that no breaker or retry state leaks into other tests
    flaky = await FakeProvider.start({ flavor: 'openai', models: ['flaky-model', 'slow-model'] });
    stack = await startStack();
    const p = await stack.api('POST', '/admin/providers', { name: 'openai', kind: 'openai', baseUrl: fake.baseUrl });
    const f = await stack.api('POST', '/admin/providers', { name: 'flaky', kind: 'openai', baseUrl: flaky.baseUrl });
    for (const m of ['gpt-4o-mini', 'gpt-4o']) await stack.api('POST', '/admin/routes', { modelPattern: m, targets: [{ providerId: p.body.id }] });
    await stack.api('POST', '/admin/routes', { modelPattern: 'flaky-model', targets: [{ providerId: f.body.id }], settings: { maxAttempts: 1 } });
    await stack.api('POST', '/admin/prices', { modelPattern: 'flaky-model', inputPerM: 1, outputPerM: 2 });
    await stack.api('POST', '/admin/routes', {
      modelPattern: 'slow-model',
      targets: [{ providerId: f.body.id }],
      settings: { maxAttempts: 1, totalTimeoutMs: 300 },
    });
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([fake?.close(), flaky?.close()]);
  });

  async function tenant(keys: object[]) {
    const t = await stack.api('POST', '/admin/tenants', { name: `met-${randomBytes(4).toString('hex')}` });
    const out: { id: string; secret: string }[] = [];
    for (const [i, limits] of keys.entries()) {
      const k = await stack.api('POST', `/admin/tenants/${t.body.id}/keys`, { name: `key${i}`, limits });
      out.push({ id: k.body.id, secret: k.body.secret });
    }
    return { tenantId: t.body.id as string, keys: out };
  }

  /** Sends the client's own x-request-id (`clientId`); the ledger keys the row by the gateway's id instead. */
  function post(secret: string, clientId: string, body: object, signal?: AbortSignal) {
    return fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', 'x-request-id': clientId },
      body: JSON.stringify(body),
      signal,
    });
  }

  /** Starts a stream and hangs up after `chunks` content deltas arrived; resolves to the gateway's request id. */
  async function streamThenHangUp(secret: string, clientId: string, body: object, chunks: number): Promise<string | null> {
    const ac = new AbortController();
    const res = await post(secret, clientId, { ...body, stream: true }, ac.signal);
    const reader = res.body!.getReader();
    let seen = '';
    while ((seen.match(/"content":"[^"]/g) ?? []).length < chunks) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += Buffer.from(value).toString('utf8');
    }
    ac.abort();
    await reader.cancel().catch(() => undefined);
    return res.headers.get('x-request-id');
  }

  it('writes exactly one row for success, stream, upstream error, timeout, our 429s, bad requests and disconnects', async () => {
    const { tenantId, keys } = await tenant([{}, { requestsPerMinute: 1 }, { dailyBudgetUsd: 0 }]);
    const [plain, limited, broke] = keys;
    // Every row the gateway queues, so that a request metered twice is caught (two rows with one id would
    // otherwise merge on the ledger's primary key).
    const recorded = jest.spyOn(stack.gateway.get(LedgerWriter), 'record');
    const tag = randomBytes(3).toString('hex');
    const id = (name: string) => `${name}-${tag}`;
    const hi = { messages: [{ role: 'user', content: 'hello' }] };
    const expected: Record<string, { status: number; code: string | null; tokens?: 'some' | 'none' }> = {};
    /** Case name → the gateway's id for it (x-request-id of the response). */
    const server: Record<string, string> = {};
    async function send(secret: string, name: string, body: object): Promise<Response> {
      const res = await post(secret, id(name), body);
      expect(res.headers.get('x-client-request-id')).toBe(id(name));
      server[name] = res.headers.get('x-request-id')!;
      expect(server[name]).toMatch(/^req_/);
      return res;
    }

    expect((await send(plain.secret, 'ok', { model: 'gpt-4o-mini', ...hi })).status).toBe(200);
    expected.ok = { status: 200, code: null, tokens: 'some' };

    const s = await send(plain.secret, 'stream', { model: 'gpt-4o-mini', ...hi, stream: true });
    expect(await s.text()).toContain('[DONE]');
    expected.stream = { status: 200, code: null, tokens: 'some' };

    flaky.failNext(1, 400, { body: { error: { message: 'bad thing', type: 'invalid_request_error', code: 'bad_thing' } } });
    expect((await send(plain.secret, 'up400', { model: 'flaky-model', ...hi })).status).toBe(400);
    expected.up400 = { status: 400, code: 'bad_thing', tokens: 'none' };

    flaky.failNext(1, 503);
    expect((await send(plain.secret, 'up503', { model: 'flaky-model', ...hi })).status).toBe(503);
    expected.up503 = { status: 503, code: expect.any(String), tokens: 'none' };

    flaky.hangNext(1);
    expect((await send(plain.secret, 'timeout', { model: 'slow-model', ...hi })).status).toBe(504);
    expected.timeout = { status: 504, code: 'upstream_timeout', tokens: 'none' };

    flaky.options.streamChunks = 10;
    flaky.dropMidStreamNext(1, 4);
    const dropped = await send(plain.secret, 'dropped', { model: 'flaky-model', ...hi, stream: true });
    expect(await dropped.text()).toContain('"error"');
    expected.dropped = { status: 502, code: 'stream_error', tokens: 'some' };

    expect((await send(plain.secret, 'nomodel', { model: 'no-such-model', ...hi })).status).toBe(404);
    expected.nomodel = { status: 404, code: 'model_not_found', tokens: 'none' };

    expect((await send(plain.secret, 'invalid', { model: 'gpt-4o-mini' })).status).toBe(400);
    expected.invalid = { status: 400, code: expect.any(String), tokens: 'none' };

    expect((await send(limited.secret, 'rpm1', { model: 'gpt-4o-mini', ...hi })).status).toBe(200);
    expected.rpm1 = { status: 200, code: null, tokens: 'some' };
    expect((await send(limited.secret, 'rpm2', { model: 'gpt-4o-mini', ...hi })).status).toBe(429);
    expected.rpm2 = { status: 429, code: 'rate_limit_exceeded', tokens: 'none' };

    expect((await send(broke.secret, 'quota', { model: 'gpt-4o-mini', ...hi })).status).toBe(429);
    expected.quota = { status: 429, code: 'insufficient_quota', tokens: 'none' };

    // The same client id again (a client retrying, or reusing ids): still a row of its own, never merged.
    expect((await post(plain.secret, id('ok'), { model: 'gpt-4o-mini', ...hi })).status).toBe(200);
    expect((await post(plain.secret, id('ok'), { model: 'gpt-4o-mini', ...hi })).status).toBe(200);

    fake.options.streamChunks = 20;
    fake.options.chunkDelayMs = 80;
    try {
      server['gone-mid-stream'] = (await streamThenHangUp(plain.secret, id('gone-mid-stream'), { model: 'gpt-4o-mini', ...hi }, 3))!;
      expected['gone-mid-stream'] = { status: 499, code: 'client_closed_request', tokens: 'some' };
    } finally {
      fake.options.chunkDelayMs = 0;
      fake.options.streamChunks = 5;
    }

    // No response at all, so no id of ours to look for: it must be the one row left over.
    fake.hangNext(1);
    const ac = new AbortController();
    const arrived = fake.received.length;
    const pending = post(plain.secret, id('gone-before-head'), { model: 'gpt-4o-mini', ...hi }, ac.signal).catch((e: Error) => e);
    // hang up once the gateway is waiting on the upstream
    await eventually(() => fake.received.length > arrived, 5000, 10, 'the upstream to receive the request before hanging up');
    ac.abort();
    await pending;

    const total = Object.keys(expected).length + 2 /* repeated client id */ + 1; /* gone before head */
    const rows = await eventually(
      async () => {
        await stack.flushLedger();
        const r = await stack.sql(`SELECT * FROM usage_records WHERE tenant_id = $1`, [tenantId]);
        return r.length >= total ? r : undefined;
      },
      5000,
      50,
      `${total} ledger rows of the tenant`,
    );
    // exactly one row each, and nothing else: ours ids, all distinct, none of them the client's
    expect(rows).toHaveLength(total);
    expect(new Set(rows.map((r) => r.request_id)).size).toBe(total);
    expect(rows.filter((r) => !String(r.request_id).startsWith('req_'))).toEqual([]);
    const byId = new Map(rows.map((r) => [r.request_id as string, r]));
    for (const [name, want] of Object.entries(expected)) {
      const row = byId.get(server[name]);
      expect({ name, status: row?.status, code: row?.error_code }).toEqual({ name, status: want.status, code: want.code });
      const tokens = row.input_tokens + row.output_tokens;
      if (want.tokens === 'some') expect({ name, tokens: tokens > 0 && Number(row.cost_usd) > 0 }).toEqual({ name, tokens: true });
      if (want.tokens === 'none') expect({ name, out: row.output_tokens, cost: Number(row.cost_usd) }).toEqual({ name, out: 0, cost: 0 });
      byId.delete(server[name]);
    }
    const rest = [...byId.values()].map((r) => [r.status, r.error_code]).sort();
    expect(rest).toEqual([
      [200, null],
      [200, null],
      [499, 'client_closed_request'],
    ]);
    const midStream = rows.find((r) => r.request_id === server['gone-mid-stream']);
    expect(midStream.output_tokens).toBeGreaterThanOrEqual(3);
    expect(midStream.output_tokens).toBeLessThan(20);
    expect(midStream.streamed).toBe(true);
    // one record() per request: a request finished twice would show here, not in the table
    const mine = recorded.mock.calls.map(([row]) => row).filter((row) => row.tenantId === tenantId);
    recorded.mockRestore();
    expect(mine).toHaveLength(total);
    expect(new Set(mine.map((row) => row.requestId)).size).toBe(total);
  });

  it('the ledger sets aside a row the database refuses and keeps writing the rest; out-of-range numbers are clamped', async () => {
    const ledger = stack.gateway.get(LedgerWriter);
    const { tenantId, keys } = await tenant([{}]);
    await stack.flushLedger();
    const before = { ...ledger.stats };
    const now = new Date();
    const row = (n: number, over: Partial<UsageRow> = {}): UsageRow => ({
      requestId: `req_ledgertest_${randomBytes(6).toString('hex')}_${n}`,
      clientRequestId: null,
      tenantId,
      keyId: keys[0].id,
      routeId: null,
      providerId: null,
      endpoint: 'chat',
      requestedModel: 'gpt-4o-mini',
      upstreamModel: null,
      status: 200,
      errorCode: null,
      inputTokens: 1,
      outputTokens: 1,
      cachedTokens: 0,
      costUsd: 0.000001,
      latencyMs: 5,
      ttfbMs: null,
      streamed: false,
      attempts: 1,
      startedAt: now,
      finishedAt: now,
      ...over,
    });
    const quiet = jest.spyOn(console, 'log').mockImplementation(() => undefined); // TypeORM logs failed queries
    try {
      const rows = [
        row(1, { clientRequestId: 'client-trace-0001' }),
        // a usage block with absurd numbers: each would overflow its column
        row(2, { inputTokens: 3e9, outputTokens: -5, cachedTokens: 1.5, costUsd: 1e12, latencyMs: Infinity, requestedModel: 'bad\u0000model' }),
        row(3, { costUsd: -1, attempts: NaN }),
        // what no sanitising can fix here (an id that is not a uuid): refused by Postgres, set aside alone
        row(4, { keyId: 'not-a-uuid' }),
        row(5),
      ];
      for (const r of rows) ledger.record(r);
      expect(await ledger.drain()).toBe(0);
      const got = await stack.sql(`SELECT * FROM usage_records WHERE request_id = ANY($1) ORDER BY request_id`, [rows.map((r) => r.requestId)]);
      expect(got.map((r) => r.request_id)).toEqual([rows[0], rows[1], rows[2], rows[4]].map((r) => r.requestId).sort());
      const by = new Map(got.map((r) => [r.request_id, r]));
      expect(by.get(rows[0].requestId).client_request_id).toBe('client-trace-0001');
      expect(by.get(rows[1].requestId)).toMatchObject({
        input_tokens: 2_147_483_647,
        output_tokens: 0,
        cached_tokens: 2,
        latency_ms: 0,
        requested_model: 'badmodel',
      });
      expect(Number(by.get(rows[1].requestId).cost_usd)).toBe(999_999_999);
      expect(Number(by.get(rows[2].requestId).cost_usd)).toBe(0);
      expect(by.get(rows[2].requestId).attempts).toBe(0);
      expect(ledger.stats.poisonRows - before.poisonRows).toBe(1);
      expect(ledger.stats.sanitizedRows - before.sanitizedRows).toBe(2);
      // the queue is not blocked: the next request is metered as usual
      expect((await post(keys[0].secret, 'after-poison-0001', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
      await stack.flushLedger();
      expect(ledger.depth).toBe(0);
      expect((await stack.sql(`SELECT count(*)::int AS n FROM usage_records WHERE tenant_id = $1 AND status = 200`, [tenantId]))[0].n).toBe(5);
    } finally {
      quiet.mockRestore();
    }
  });

  describe('usage reports', () => {
    let tenantId: string;
    let keyIds: string[];
    /** What the clients saw, grouped by model and key: requests, tokens, cost at list price. */
    const seen = new Map<string, { requests: number; errors: number; input: number; output: number; cost: number }>();

    beforeAll(async () => {
      const t = await tenant([{}, {}]);
      tenantId = t.tenantId;
      keyIds = t.keys.map((k) => k.id);
      const plan: [number, string, boolean][] = [
        [0, 'gpt-4o-mini', false],
        [0, 'gpt-4o-mini', false],
        [0, 'gpt-4o-mini', true],
        [0, 'gpt-4o', false],
        [1, 'gpt-4o', false],
        [1, 'gpt-4o', true],
        [1, 'gpt-4o-mini', false],
      ];
      for (const [k, model, stream] of plan) {
        const client = new OpenAI({ apiKey: t.keys[k].secret, baseURL: stack.baseURL, maxRetries: 0 });
        let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
        if (stream) {
          const s = await client.chat.completions.create({
            model,
            messages: [{ role: 'user', content: `s ${k}` }],
            stream: true,
            stream_options: { include_usage: true },
          });
          for await (const c of s) if (c.usage) usage = c.usage;
        } else {
          usage = (await client.chat.completions.create({ model, messages: [{ role: 'user', content: `hello from ${k}` }] })).usage!;
        }
        const g = seen.get(`${model}|${keyIds[k]}`) ?? { requests: 0, errors: 0, input: 0, output: 0, cost: 0 };
        g.requests++;
        g.input += usage!.prompt_tokens;
        g.output += usage!.completion_tokens;
        g.cost += (usage!.prompt_tokens * PRICES[model].input + usage!.completion_tokens * PRICES[model].output) / 1e6;
        seen.set(`${model}|${keyIds[k]}`, g);
      }
      // an error is a request too (no model routed, so it is reported under its requested name)
      await new OpenAI({ apiKey: t.keys[1].secret, baseURL: stack.baseURL, maxRetries: 0 }).chat.completions
        .create({ model: 'gpt-4o', messages: [] })
        .catch(() => undefined);
      const g = seen.get(`gpt-4o|${keyIds[1]}`)!;
      g.requests++;
      g.errors++;
      await stack.flushLedger();
    });

    it('totals by day, model and key match what the clients were billed and the ledger', async () => {
      const r = await stack.api('GET', `/admin/usage?tenantId=${tenantId}&groupBy=day,model,key`);
      expect(r.status).toBe(200);
      const today = new Date().toISOString().slice(0, 10);
      expect(r.body.data).toHaveLength(seen.size);
      for (const row of r.body.data) {
        const want = seen.get(`${row.model}|${row.keyId}`)!;
        expect(row.day).toBe(today);
        expect(row).toMatchObject({ requests: want.requests, errors: want.errors, inputTokens: want.input, outputTokens: want.output });
        expect(row.costUsd).toBeCloseTo(want.cost, 8);
      }
      const ledger = (
        await stack.sql(
          `SELECT count(*)::int AS n, sum(input_tokens)::int AS i, sum(output_tokens)::int AS o, sum(cost_usd) AS c FROM usage_records WHERE tenant_id = $1`,
          [tenantId],
        )
      )[0];
      const total = (await stack.api('GET', `/admin/usage?tenantId=${tenantId}`)).body.data[0];
      expect(total).toMatchObject({ requests: ledger.n, inputTokens: ledger.i, outputTokens: ledger.o });
      expect(total.costUsd).toBeCloseTo(Number(ledger.c), 8);
      const byModel = (await stack.api('GET', `/admin/usage?tenantId=${tenantId}&groupBy=model`)).body.data;
      expect(byModel.map((m: any) => m.model)).toEqual(['gpt-4o', 'gpt-4o-mini']);
      expect(byModel.reduce((s: number, m: any) => s + m.requests, 0)).toBe(ledger.n);
      const byKey = (await stack.api('GET', `/admin/usage?tenantId=${tenantId}&groupBy=key`)).body.data;
      expect(byKey.find((k: any) => k.keyId === keyIds[0]).requests).toBe(4);
      expect(byKey.find((k: any) => k.keyId === keyIds[1]).requests).toBe(4);
    });

    it('filters by time range', async () => {
      const later = new Date(Date.now() + 3_600_000).toISOString();
      const earlier = new Date(Date.now() - 3_600_000).toISOString();
      expect((await stack.api('GET', `/admin/usage?tenantId=${tenantId}&from=${later}&groupBy=model`)).body.data).toEqual([]);
      const inRange = (await stack.api('GET', `/admin/usage?tenantId=${tenantId}&from=${earlier}&to=${later}`)).body.data[0];
      expect(inRange.requests).toBe(8);
    });

    it('returns CSV that parses to the same numbers as the JSON', async () => {
      const q = `tenantId=${tenantId}&groupBy=day,model,key`;
      const json = (await stack.api('GET', `/admin/usage?${q}`)).body.data;
      const csv = await stack.api('GET', `/admin/usage?${q}&format=csv`);
      expect(csv.status).toBe(200);
      expect(csv.headers.get('content-type')).toContain('text/csv');
      const [header, ...lines] = (csv.body as string).trim().split('\n');
      const cols = header.split(',');
      expect(cols).toEqual(['day', 'keyId', 'model', 'requests', 'errors', 'inputTokens', 'outputTokens', 'cachedTokens', 'costUsd']);
      expect(lines).toHaveLength(json.length);
      const parsed = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
      parsed.forEach((row, i) => {
        expect(row.day).toBe(json[i].day);
        expect(row.model).toBe(json[i].model);
        expect(row.keyId).toBe(json[i].keyId);
        for (const n of ['requests', 'errors', 'inputTokens', 'outputTokens', 'cachedTokens', 'costUsd']) expect(Number(row[n])).toBe(json[i][n]);
      });
    });

    it("answers a tenant's spend against its budgets in one call, matching the ledger", async () => {
      await stack.api('PATCH', `/admin/tenants/${tenantId}`, { limits: { dailyBudgetUsd: 5, monthlyBudgetUsd: 50 } });
      await stack.api('PATCH', `/admin/tenants/${tenantId}/keys/${keyIds[0]}`, { limits: { monthlyBudgetUsd: 1 } });
      const spend = await stack.api('GET', `/admin/tenants/${tenantId}/spend`);
      expect(spend.status).toBe(200);
      const total = [...seen.values()].reduce((s, g) => s + g.cost, 0);
      expect(spend.body.tenant.daily).toMatchObject({ budgetUsd: 5, exhausted: false });
      expect(spend.body.tenant.daily.spentUsd).toBeCloseTo(total, 8);
      expect(spend.body.tenant.daily.remainingUsd).toBeCloseTo(5 - total, 8);
      expect(spend.body.tenant.monthly.budgetUsd).toBe(50);
      expect(spend.body.tenant.monthly.spentUsd).toBeCloseTo(total, 8);
      expect(spend.body.tenant.monthly.resetsAt).toBe(new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() + 1, 1)).toISOString());
      const k0 = spend.body.keys.find((k: any) => k.keyId === keyIds[0]);
      const k0cost = [...seen.entries()].filter(([g]) => g.endsWith(keyIds[0])).reduce((s, [, g]) => s + g.cost, 0);
      expect(k0.monthly).toMatchObject({ budgetUsd: 1 });
      expect(k0.monthly.spentUsd).toBeCloseTo(k0cost, 8);
      expect(k0.daily).toMatchObject({ budgetUsd: null, remainingUsd: null });
      expect((await stack.api('GET', `/admin/tenants/00000000-0000-4000-8000-000000000000/spend`)).status).toBe(404);
      // a tenant's own viewer reads its spend, and no other tenant's
      const viewer = await stack.api('POST', '/admin/tokens', { role: 'viewer', tenantId, name: 'spend-viewer' });
      expect(viewer.status).toBe(201);
      expect((await stack.api('GET', `/admin/tenants/${tenantId}/spend`, undefined, viewer.body.secret)).body.tenant.daily.spentUsd).toBeCloseTo(total, 8);
      const other = await tenant([{}]);
      expect((await stack.api('GET', `/admin/tenants/${other.tenantId}/spend`, undefined, viewer.body.secret)).status).toBe(404);
      const docs = (await fetch(`${stack.adminUrl}/admin/docs/openapi.json`).then((r) => r.json())) as any;
      expect(docs.paths['/admin/tenants/{id}/spend']).toBeDefined();
      expect(Object.keys(docs.components.schemas.LimitsDto.properties)).toEqual(
        expect.arrayContaining(['requestsPerMinute', 'tokensPerMinute', 'concurrentRequests', 'dailyBudgetUsd', 'monthlyBudgetUsd']),
      );
    });
  });
});
