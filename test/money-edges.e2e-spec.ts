import { randomBytes } from 'node:crypto';
import { FakeProvider, RawUpstream, Stack, eventually, rawUpstream, startStack } from '@gw/testing';

jest.setTimeout(60_000);

/**
 * The hostile review's budget and availability holes, each exploited as an attacker (a tenant with a key) would,
 * against real servers on loopback: gateway + admin → FakeProviders (OpenAI, Ollama, OpenRouter) and a raw HTTP
 * upstream for answers the fake never gives. Each test fails on the commit before "Review fixes: …".
 *
 * gpt-4o is priced from the catalog: $2.50 per 1M input tokens, $10 per 1M output tokens (flex 0.5x).
 */
const IN_PER_M = 2.5;
const OUT_PER_M = 10;
const usdOf = (input: number, output: number) => (input * IN_PER_M + output * OUT_PER_M) / 1e6;
const MIN_OUTPUT = 256; // BUDGET_MIN_OUTPUT_TOKENS (default)
const TOO_LARGE =
  'Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 45000. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.';

describe(`money edges: the review's budget and availability holes stay closed (${process.env.TEST_REDIS_URL ? 'Redis' : 'in-memory'} counters)`, () => {
  let stack: Stack;
  let openai: FakeProvider; // gpt-4o
  let ollama: FakeProvider; // local, priced 0
  let limited: FakeProvider; // the 429 tests' own provider, so their backoffs touch nothing else
  let router: FakeProvider; // OpenRouter
  let raw: RawUpstream;
  let rich: { tenantId: string; secret: string }; // no budget

  async function create(path: string, body: object): Promise<string> {
    const r = await stack.api('POST', path, body);
    if (r.status !== 201) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.id as string;
  }

  async function tenantWith(limits: object = {}) {
    const tenantId = await create('/admin/tenants', { name: `edge-${randomBytes(4).toString('hex')}`, limits });
    const k = await stack.api('POST', `/admin/tenants/${tenantId}/keys`, { name: 'k' });
    expect(k.status).toBe(201);
    return { tenantId, secret: k.body.secret as string };
  }

  async function call(path: string, secret: string, body: object, headers: Record<string, string> = {}) {
    const res = await fetch(`${stack.baseURL}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    let json: any = text;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, body: json, requestId: res.headers.get('x-request-id') };
  }
  const chat = (secret: string, body: object) => call('/chat/completions', secret, body);
  const ask = (model: string, extra: object = {}) => ({ model, messages: [{ role: 'user', content: 'write me a poem' }], ...extra });

  async function ledgerRow(requestId: string | null): Promise<any> {
    expect(requestId).toBeTruthy();
    return eventually(
      async () => {
        await stack.flushLedger();
        return (await stack.sql('SELECT * FROM usage_records WHERE request_id = $1', [requestId]))[0];
      },
      5000,
      25,
      `the ledger row of ${requestId}`,
    );
  }

  beforeAll(async () => {
    [openai, ollama, limited, router, raw] = await Promise.all([
      FakeProvider.start({ flavor: 'openai', models: ['gpt-4o'] }),
      FakeProvider.start({ flavor: 'ollama', models: ['llama3.2'] }),
      FakeProvider.start({ flavor: 'openai', strictModels: false }),
      FakeProvider.start({ flavor: 'openrouter', models: ['openai/gpt-4o'] }),
      rawUpstream(),
    ]);
    stack = await startStack();
    const O = await create('/admin/providers', { name: 'openai', kind: 'openai', baseUrl: openai.baseUrl });
    const L = await create('/admin/providers', { name: 'ollama', kind: 'ollama', baseUrl: ollama.baseUrl });
    const RL = await create('/admin/providers', { name: 'openai-rl', kind: 'openai', baseUrl: limited.baseUrl });
    const OR = await create('/admin/providers', { name: 'openrouter', kind: 'openrouter', baseUrl: router.baseUrl });
    const RAW = await create('/admin/providers', { name: 'raw', kind: 'openai', baseUrl: raw.baseUrl });
    // A local (free) first group, gpt-4o as the fallback.
    await create('/admin/routes', {
      modelPattern: 'smart',
      targets: [
        { providerId: L, model: 'llama3.2', priority: 0 },
        { providerId: O, model: 'gpt-4o', priority: 1 },
      ],
    });
    await create('/admin/routes', { modelPattern: 'dear', targets: [{ providerId: O, model: 'gpt-4o' }] });
    await create('/admin/routes', { modelPattern: 'big-4o', targets: [{ providerId: RL, model: 'gpt-4o' }] });
    await create('/admin/routes', { modelPattern: 'gpt-*', targets: [{ providerId: RL }] });
    await create('/admin/routes', { modelPattern: 'or-4o', targets: [{ providerId: OR, model: 'openai/gpt-4o' }] });
    await create('/admin/routes', { modelPattern: 'raw-4o', targets: [{ providerId: RAW, model: 'gpt-4o' }] });
    rich = await tenantWith();
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([openai?.close(), ollama?.close(), limited?.close(), router?.close(), raw?.close()]);
  });

  beforeEach(() => {
    for (const f of [openai, ollama, limited, router]) {
      f.reset();
      f.options.latencyMs = 0;
    }
    raw.reset();
  });

  describe('1. a reservation is priced at the dearest target of the route', () => {
    it('$0.001 budget, a free local target first and gpt-4o second: refused with insufficient_quota, not admitted at $0', async () => {
      const { secret } = await tenantWith({ dailyBudgetUsd: 0.001 });
      // The useful minimum at gpt-4o prices ($0.00256 of output) does not fit $0.001.
      expect(usdOf(0, MIN_OUTPUT)).toBeGreaterThan(0.001);
      const r = await chat(secret, ask('smart'));
      expect(r.status).toBe(429);
      expect(r.body.error).toMatchObject({ code: 'insufficient_quota', type: 'insufficient_quota' });
      expect(ollama.received).toHaveLength(0);
      expect(openai.received).toHaveLength(0);
    });

    it('$0.01 budget, 20 concurrent Responses continuations (served by gpt-4o only): spend stays within the documented bound', async () => {
      const BUDGET = 0.01;
      const K = 500; // output tokens the upstream answers whatever the cap: $0.005 each
      const { tenantId, secret } = await tenantWith({ dailyBudgetUsd: BUDGET });
      openai.options.latencyMs = 100;
      openai.script(...Array.from({ length: 20 }, () => ({ usage: { output: K } })));
      const body = { model: 'smart', input: 'continue the poem', previous_response_id: 'resp_0123456789abcdef' };
      const results = await Promise.all(Array.from({ length: 20 }, () => call('/responses', secret, body)));
      const ok = results.filter((r) => r.status === 200);
      expect(ok.length).toBeGreaterThanOrEqual(1);
      expect(ollama.received).toHaveLength(0); // a continuation is never served by the translated (local) target
      for (const r of results.filter((x) => x.status !== 200)) expect(r.status).toBe(429);

      await eventually(
        async () => (await stack.api('GET', `/admin/tenants/${tenantId}/spend`)).body.tenant.daily.reservedUsd === 0,
        5000,
        50,
        'reservations released',
      );
      await stack.flushLedger();
      const rows = await stack.sql(`SELECT cost_usd FROM usage_records WHERE tenant_id = $1`, [tenantId]);
      const spent = rows.reduce((s, r) => s + Number(r.cost_usd), 0);
      expect(spent).toBeGreaterThan(0);
      // A reservation below a request's worst case is only a clamped one (nothing else in flight, at least the
      // useful minimum): the overshoot is at most one request's (K − 256) output tokens at gpt-4o's rate.
      expect(spent - BUDGET).toBeLessThanOrEqual(usdOf(0, K - MIN_OUTPUT) + 1e-9);
      const spend = await stack.api('GET', `/admin/tenants/${tenantId}/spend`);
      expect(spend.body.tenant.daily.spentUsd).toBeCloseTo(spent, 8);
    });
  });

  it('2. a non-stream chat answer without a usage block is billed on an estimate, not $0', async () => {
    const content = 'A poem. '.repeat(100);
    const answer = JSON.stringify({
      id: 'chatcmpl-nousage',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4o',
      choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: 'stop' }],
    });
    raw.json(200, answer);
    const r = await chat(rich.secret, ask('raw-4o'));
    expect(r.status).toBe(200);
    expect(r.body.choices[0].message.content).toBe(content);
    expect(raw.received).toHaveLength(1);
    const row = await ledgerRow(r.requestId);
    expect(row.status).toBe(200);
    const out = Math.ceil(Buffer.byteLength(answer) / 4);
    expect(row.output_tokens).toBe(out);
    expect(row.input_tokens).toBeGreaterThan(0);
    expect(Number(row.cost_usd)).toBeGreaterThan(0);
    expect(Number(row.cost_usd)).toBeCloseTo(usdOf(row.input_tokens, out), 8);
  });

  it('3. /v1/responses with background: true is refused (unmeterable); nothing is forwarded', async () => {
    const r = await call('/responses', rich.secret, { model: 'dear', input: 'a long essay, please', background: true });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'unsupported_parameter', param: 'background' });
    expect(openai.received).toHaveLength(0);
  });

  it('4. max_completion_tokens: 1 beside max_tokens: 100000 on a small budget: sized by the largest, clamped, both forwarded ≤ the cap', async () => {
    const { secret } = await tenantWith({ dailyBudgetUsd: 0.01 });
    const r = await chat(secret, ask('dear', { max_completion_tokens: 1, max_tokens: 100_000 }));
    expect(r.status).toBe(200);
    const cap = Number(r.headers.get('x-gateway-output-cap'));
    expect(cap).toBeGreaterThanOrEqual(MIN_OUTPUT);
    expect(cap).toBeLessThanOrEqual(Math.floor(0.01 / usdOf(0, 1)));
    const sent = openai.requestsTo('/chat/completions').at(-1)!.body;
    expect(sent.max_tokens).toBeLessThanOrEqual(cap);
    expect(sent.max_completion_tokens).toBeLessThanOrEqual(cap);
  });

  describe('5. an upstream 429 backs off only what it limits', () => {
    it("a 'Request too large' 429 answered to tenant A does not back the target off for tenant B", async () => {
      const a = await tenantWith();
      const b = await tenantWith();
      limited.failNext(1, 429, {
        body: { error: { message: TOO_LARGE, type: 'tokens', param: null, code: 'rate_limit_exceeded' } },
        headers: { 'x-ratelimit-reset-tokens': '50s' },
      });
      const ra = await chat(a.secret, ask('big-4o'));
      expect(ra.status).toBe(429);
      expect(limited.requestsTo('/chat/completions')).toHaveLength(1);
      const rb = await chat(b.secret, ask('big-4o'));
      expect(rb.status).toBe(200);
      expect(rb.body.choices[0].message.content).toContain('Hello from fake-openai');
      expect(limited.requestsTo('/chat/completions')).toHaveLength(2);
    });

    it('on a glob route, a rate-limit 429 for one model backs off that model only, not another of the same provider', async () => {
      limited.failNext(1, 429, { retryAfter: '30' });
      const first = await chat(rich.secret, ask('gpt-4.1'));
      expect(first.status).toBe(429);
      expect(limited.requestsTo('/chat/completions')).toHaveLength(1);
      // Another model behind the same glob target is served.
      const other = await chat(rich.secret, ask('gpt-4.1-mini'));
      expect(other.status).toBe(200);
      expect(limited.requestsTo('/chat/completions').map((r) => r.body.model)).toEqual(['gpt-4.1', 'gpt-4.1-mini']);
      // The limited model itself is still held: answered without an upstream call.
      const again = await chat(rich.secret, ask('gpt-4.1'));
      expect(again.status).toBe(429);
      expect(again.body.error.code).toBe('rate_limit_exceeded');
      expect(limited.requestsTo('/chat/completions')).toHaveLength(2);
    });
  });

  it('6. service_tier flex is billed at flex only when the upstream confirms it', async () => {
    const usage = { input: 1000, output: 1000 };
    openai.script({ usage }, { usage }, { usage, serviceTier: 'flex' });
    const plain = await chat(rich.secret, ask('dear'));
    const ignored = await chat(rich.secret, ask('dear', { service_tier: 'flex' }));
    const confirmed = await chat(rich.secret, ask('dear', { service_tier: 'flex' }));
    for (const r of [plain, ignored, confirmed]) expect(r.status).toBe(200);
    expect(openai.requestsTo('/chat/completions').map((r) => r.body.service_tier)).toEqual([undefined, 'flex', 'flex']);
    const standard = usdOf(1000, 1000); // $0.0125
    expect(Number((await ledgerRow(plain.requestId)).cost_usd)).toBeCloseTo(standard, 8);
    // Asked for flex, the upstream said nothing: it served (and bills) the default tier.
    expect(Number((await ledgerRow(ignored.requestId)).cost_usd)).toBeCloseTo(standard, 8);
    expect(Number((await ledgerRow(confirmed.requestId)).cost_usd)).toBeCloseTo(standard / 2, 8);
  });

  it("7. OpenRouter: usage accounting is forced on and the client's own fallback list (models, route) is stripped", async () => {
    const r = await chat(rich.secret, ask('or-4o', { usage: { include: false }, models: ['openai/gpt-4o', 'anthropic/claude-3-opus'], route: 'fallback' }));
    expect(r.status).toBe(200);
    const sent = router.requestsTo('/chat/completions').at(-1)!.body;
    expect(sent.model).toBe('openai/gpt-4o');
    expect(sent.usage).toEqual({ include: true });
    expect(sent).not.toHaveProperty('models');
    expect(sent).not.toHaveProperty('route');
  });

  it('8. /metrics without METRICS_TOKEN: loopback answered, loopback relayed by a local proxy refused', async () => {
    expect(stack.config.metricsToken).toBeUndefined();
    const direct = await fetch(`${stack.gatewayUrl}/metrics`);
    expect(direct.status).toBe(200);
    expect(await direct.text()).toContain('gateway_');
    const proxied = await fetch(`${stack.gatewayUrl}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(proxied.status).toBe(403);
    expect(((await proxied.json()) as any).error.code).toBe('metrics_loopback_only');
  });
});
