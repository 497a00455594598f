import OpenAI from 'openai';
import { randomBytes } from 'node:crypto';
import { LimitsService, toUnits, toUsd } from '@gw/limits';
import { FakeProvider, Stack, eventually, startStack } from '@gw/testing';

jest.setTimeout(90_000);

/**
 * Issue 12.4: refusals tell the truth, and a small budget can be used. Real HTTP clients → gateway →
 * FakeProvider (openai for chat and native Responses, ollama for translated Responses).
 *
 * `mini` is priced like gpt-4o-mini: $0.15 per 1M input tokens, $0.60 per 1M output tokens. With the default
 * 4,096-token output reservation a request reserves ≈ $0.00246, so a $0.01 budget holds four at a time.
 */
const MINI = 'mini';
const LOCAL = 'local-mini';
const IN_PER_M = 0.15;
const OUT_PER_M = 0.6;
const outUsd = (tokens: number) => (tokens * OUT_PER_M) / 1e6;
const inUsd = (tokens: number) => (tokens * IN_PER_M) / 1e6;
const MIN_OUTPUT = 256; // BUDGET_MIN_OUTPUT_TOKENS (default)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`budgets can be used, and refusals tell the truth (${process.env.TEST_REDIS_URL ? 'Redis' : 'in-memory'} counters)`, () => {
  let stack: Stack;
  let fake: FakeProvider;
  let ollama: FakeProvider;
  let limits: LimitsService;

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai', models: [MINI] });
    ollama = await FakeProvider.start({ flavor: 'ollama', models: [LOCAL] });
    stack = await startStack();
    limits = stack.gateway.get(LimitsService);
    const openai = await stack.api('POST', '/admin/providers', { name: 'openai', kind: 'openai', baseUrl: fake.baseUrl });
    const local = await stack.api('POST', '/admin/providers', { name: 'ollama', kind: 'ollama', baseUrl: ollama.baseUrl });
    expect((await stack.api('POST', '/admin/routes', { modelPattern: MINI, targets: [{ providerId: openai.body.id }] })).status).toBe(201);
    expect((await stack.api('POST', '/admin/routes', { modelPattern: LOCAL, targets: [{ providerId: local.body.id }] })).status).toBe(201);
    for (const m of [MINI, LOCAL])
      expect((await stack.api('POST', '/admin/prices', { modelPattern: m, inputPerM: IN_PER_M, outputPerM: OUT_PER_M })).status).toBe(201);
  });

  afterAll(async () => {
    await stack?.close();
    await fake?.close();
    await ollama?.close();
  });

  beforeEach(() => {
    fake.reset();
    ollama.reset();
    fake.options.latencyMs = 0;
  });

  async function tenantWith(tenantLimits: object) {
    const t = await stack.api('POST', '/admin/tenants', { name: `burst-${randomBytes(4).toString('hex')}`, limits: tenantLimits });
    expect(t.status).toBe(201);
    const k = await stack.api('POST', `/admin/tenants/${t.body.id}/keys`, { name: 'k' });
    expect(k.status).toBe(201);
    return { tenantId: t.body.id as string, keyId: k.body.id as string, secret: k.body.secret as string };
  }

  async function call(path: string, secret: string, body: object, signal?: AbortSignal) {
    const res = await fetch(`${stack.baseURL}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });
    const text = await res.text();
    let json: any = text;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, body: json };
  }
  const chat = (secret: string, body: object, signal?: AbortSignal) => call('/chat/completions', secret, body, signal);
  /** No max_tokens, like Codex: the default 4,096-token output is reserved. */
  const ask = (content = 'write me a poem') => ({ model: MINI, messages: [{ role: 'user', content }] });
  const promptEstimate = (body: object) => Math.ceil(Buffer.byteLength(JSON.stringify(body)) / 4);

  async function ledger(tenantId: string) {
    await stack.flushLedger();
    return stack.sql(`SELECT * FROM usage_records WHERE tenant_id = $1 ORDER BY started_at`, [tenantId]);
  }
  const usd = (rows: { cost_usd: string }[]) => toUsd(rows.reduce((s, r) => s + toUnits(Number(r.cost_usd)), 0));

  it('$0.01 budget, 64 clients at once retrying as SDKs do: at least half of it is used, overshoot within the bound', async () => {
    const BUDGET = 0.01;
    const K = 500; // output tokens the fake answers per request, whatever max_tokens says: $0.0003 each
    const { tenantId, keyId, secret } = await tenantWith({ dailyBudgetUsd: BUDGET });
    fake.options.latencyMs = 50;
    fake.script(...Array.from({ length: 64 }, () => ({ usage: { output: K } })));
    // A client as the openai SDKs and Codex behave: a retryable 429 is retried after Retry-After (with a
    // little jitter), insufficient_quota is final.
    const client = async () => {
      for (let attempt = 1; ; attempt++) {
        const r = await chat(secret, ask());
        if (r.status !== 429 || r.body.error.code !== 'rate_limit_exceeded' || attempt === 40) return { ...r, attempt };
        expect(r.headers.get('retry-after')).toBe('1');
        await sleep(Number(r.headers.get('retry-after')) * 1000 * (1 + Math.random() * 0.25));
      }
    };
    const results = await Promise.all(Array.from({ length: 64 }, client));
    const ok = results.filter((r) => r.status === 200);
    const quota = results.filter((r) => r.status === 429 && r.body.error.code === 'insufficient_quota');
    expect(ok.length + quota.length).toBe(64); // every client got an answer or a final no; none left retrying

    const rows = await ledger(tenantId);
    const spent = usd(rows);

    if (process.env.BUDGET_REPORT)
      console.log(
        `$0.01 burst: ${ok.length} served, ${quota.length} insufficient_quota, spent $${spent.toFixed(6)} (${((spent / BUDGET) * 100).toFixed(1)}%), max attempts ${Math.max(...results.map((r) => r.attempt))}`,
      );
    expect(spent).toBeGreaterThanOrEqual(BUDGET * 0.5);
    // Overshoot bound: a reservation below a request's worst case is only ever a clamped one, a clamp needs
    // nothing else in flight, and it reserves at least the useful minimum (256 output tokens). The fake ignores
    // the clamped max_tokens and answers K = 500 anyway, so the overshoot is at most one request's
    // (worst case − reservation) = (500 − 256) × $0.60/1M = $0.0001464.
    expect(spent - BUDGET).toBeLessThanOrEqual(outUsd(K - MIN_OUTPUT) + 1e-9);
    // insufficient_quota only once settled spend left less than a useful minimum
    await limits.idle();
    const live = (await limits.counters(tenantId, keyId)).tenant.daily;
    expect(live.reservedUnits).toBe(0);
    expect(live.spentUnits).toBe(toUnits(spent));
    if (quota.length) expect(BUDGET - toUsd(live.spentUnits)).toBeLessThan(outUsd(MIN_OUTPUT) + inUsd(promptEstimate(ask())));
  });

  it('in flight → retryable 429 with Retry-After; spend shows the reservation; nothing in flight → clamp; below the minimum → insufficient_quota', async () => {
    const BUDGET = 0.003;
    const { tenantId, keyId, secret } = await tenantWith({ dailyBudgetUsd: BUDGET });
    const body = ask();
    const prompt = promptEstimate(body);
    const worst = inUsd(prompt) + outUsd(4096); // ≈ $0.00246

    // A is held upstream: its worst case is reserved
    fake.hangNext(1);
    const ac = new AbortController();
    const held = chat(secret, body, ac.signal).catch((e: Error) => e);
    await eventually(() => fake.requestsTo('/chat/completions').length === 1, 5000, 10, 'A to reach the upstream');

    const spend = await stack.api('GET', `/admin/tenants/${tenantId}/spend`);
    expect(spend.status).toBe(200);
    expect(spend.body.tenant.daily).toMatchObject({ budgetUsd: BUDGET, spentUsd: 0, exhausted: false });
    expect(spend.body.tenant.daily.reservedUsd).toBeCloseTo(worst, 8);
    expect(spend.body.keys[0].daily).toMatchObject({ budgetUsd: null, reservedUsd: null }); // the key has no budget of its own

    // B does not fit beside A: the money may come back, so it is a retryable 429, not insufficient_quota
    const b = await chat(secret, body);
    expect(b.status).toBe(429);
    expect(b.body.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests', param: null });
    expect(b.body.error.message).toContain('reserved by requests in flight');
    expect(b.headers.get('retry-after')).toBe('1');
    expect(b.headers.get('x-should-retry')).toBe('true');

    // The openai SDK retries it after Retry-After; A's client gives up meanwhile, so the retry gets in
    const sdk = new OpenAI({ apiKey: secret, baseURL: stack.baseURL, maxRetries: 2 });
    const retried = sdk.chat.completions.create(body as any);
    await eventually(async () => (await ledger(tenantId)).filter((r) => r.status === 429).length === 2, 5000, 20, "the SDK's first attempt refused");
    // A's client gives up after A reached the upstream: billed like an aborted stream (its prompt), not $0
    ac.abort();
    await held;
    expect((await retried).choices[0].message.content).toContain('Hello from fake-openai');
    const aborted = await eventually(async () => (await ledger(tenantId)).find((r) => r.status === 499), 5000, 50, "A's 499 row");
    expect(aborted).toMatchObject({ error_code: 'client_closed_request', input_tokens: prompt });
    expect(Number(aborted.cost_usd)).toBeCloseTo(inUsd(prompt), 10);
    await limits.idle();

    // C fits whole (nothing in flight, $0.003 − tiny left) and really costs 4,000 output tokens: $0.0024
    fake.script({ usage: { output: 4000 } });
    expect((await chat(secret, body)).status).toBe(200);
    await limits.idle();

    // D's worst case ($0.00246) is more than is left (≈ $0.0006) and nothing is in flight: clamped to what is left
    const left = BUDGET - toUsd((await limits.counters(tenantId, keyId)).tenant.daily.spentUnits);
    const d = await chat(secret, body);
    expect(d.status).toBe(200);
    const cap = Number(d.headers.get('x-gateway-output-cap'));
    const sent = fake.requestsTo('/chat/completions').at(-1)!.body;
    expect(sent.max_completion_tokens).toBe(cap); // OpenAI's field, as the client named none
    expect(Math.abs(cap - Math.floor((left - inUsd(prompt)) / outUsd(1)))).toBeLessThanOrEqual(1);
    expect(cap).toBeGreaterThanOrEqual(MIN_OUTPUT);
    expect(cap).toBeLessThan(4096);
    await limits.idle();

    // E spends most of the rest; then what is left is less than the 256-token minimum: insufficient_quota
    fake.script({ usage: { output: 900 } });
    expect((await chat(secret, { ...body, max_tokens: 900 })).status).toBe(200);
    await limits.idle();
    const f = await chat(secret, body);
    expect(f.status).toBe(429);
    expect(f.body.error).toMatchObject({ code: 'insufficient_quota', type: 'insufficient_quota' });
    expect(f.body.error.message).toContain("less than this request's useful minimum");
    expect(f.headers.get('retry-after')).toBeNull();
    expect(f.headers.get('x-should-retry')).toBe('false');
    // …and the SDK, which retries other 429s, stops at once (one ledger row below, not three)
    await expect(sdk.chat.completions.create(body as any)).rejects.toMatchObject({ status: 429, code: 'insufficient_quota' });
    // …for this request: one whose own worst case fits what is left still passes, unclamped
    const small = await chat(secret, { ...body, max_tokens: 20 });
    expect(small.status).toBe(200);
    expect(small.headers.get('x-gateway-output-cap')).toBeNull();

    await limits.idle();
    const rows = await ledger(tenantId);
    expect(rows.map((r) => [r.status, r.error_code])).toEqual([
      [499, 'client_closed_request'],
      [429, 'rate_limit_exceeded'],
      [429, 'rate_limit_exceeded'],
      [200, null], // A, B, the SDK's two attempts
      [200, null],
      [200, null],
      [200, null],
      [429, 'insufficient_quota'],
      [429, 'insufficient_quota'],
      [200, null], // C, D, E, F, F by the SDK, small
    ]);
    const after = await stack.api('GET', `/admin/tenants/${tenantId}/spend`);
    expect(after.body.tenant.daily.reservedUsd).toBe(0);
    expect(after.body.tenant.daily.spentUsd).toBeCloseTo(usd(rows), 8);
    expect(after.body.tenant.daily.spentUsd).toBeLessThanOrEqual(BUDGET);
  });

  it.each([
    ['pass-through (openai)', MINI, () => fake, '/responses', 'max_output_tokens'],
    ['translated (ollama)', LOCAL, () => ollama, '/chat/completions', 'max_tokens'],
  ] as const)('/v1/responses %s: the clamp rewrites the forwarded output cap', async (_label, model, upstream, path, field) => {
    // $0.001 affords ≈ 1,660 output tokens: less than the default 4,096 and than the 5,000 asked for
    const { tenantId, keyId, secret } = await tenantWith({ dailyBudgetUsd: 0.001 });
    for (const extra of [{}, { max_output_tokens: 5000 }]) {
      const body = { model, input: 'write me a poem', ...extra };
      const left = 0.001 - toUsd((await limits.counters(tenantId, keyId)).tenant.daily.spentUnits);
      const r = await call('/responses', secret, body);
      expect(r.status).toBe(200);
      const cap = Number(r.headers.get('x-gateway-output-cap'));
      expect(Math.abs(cap - Math.floor((left - inUsd(promptEstimate(body))) / outUsd(1)))).toBeLessThanOrEqual(1);
      expect(upstream().requestsTo(path).at(-1)!.body[field]).toBe(cap);
      await limits.idle();
    }
  });

  it('20 non-stream requests aborted by their clients after reaching the upstream are billed, not $0', async () => {
    const { tenantId, keyId, secret } = await tenantWith({ dailyBudgetUsd: 1 });
    fake.hangNext(20);
    const acs = Array.from({ length: 20 }, () => new AbortController());
    const body = { ...ask('a long question '.repeat(50)), max_tokens: 100 };
    const pending = acs.map((ac) => chat(secret, body, ac.signal).catch((e: Error) => e));
    await eventually(() => fake.requestsTo('/chat/completions').length === 20, 5000, 10, 'all 20 to reach the upstream');
    for (const ac of acs) ac.abort();
    await Promise.all(pending);
    const rows = await eventually(
      async () => {
        const r = await ledger(tenantId);
        return r.length === 20 && r;
      },
      5000,
      50,
      '20 ledger rows',
    );
    for (const r of rows) {
      expect(r).toMatchObject({ status: 499, error_code: 'client_closed_request', streamed: false, input_tokens: promptEstimate(body) });
      expect(Number(r.cost_usd)).toBeCloseTo(inUsd(promptEstimate(body)), 10);
    }
    await limits.idle();
    expect((await limits.counters(tenantId, keyId)).tenant.daily).toEqual({ spentUnits: toUnits(usd(rows)), reservedUnits: 0 });
  });
});
