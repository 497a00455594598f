import OpenAI from 'openai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_MODELS,
  FakeProvider,
  Stack,
  addFailoverRoutes,
  delta,
  eventually,
  metricValue,
  parseExposition,
  scrape,
  seedTenant,
  startGatewayReplica,
  startStack,
} from '@gw/testing';

jest.setTimeout(60_000);

const GPT_4O_MINI = { input: 0.15, output: 0.6 }; // USD per 1M tokens, seeded by the initial migration

/**
 * Sends known traffic through the gateway to fake providers and checks that every documented metric
 * moved by exactly what that traffic implies, by comparing scrapes of GET /metrics before and after.
 */
describe('metrics: GET /metrics moves with the traffic', () => {
  let stack: Stack;
  let openai: FakeProvider;
  let backup: FakeProvider;
  let flaky: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;
  let client: OpenAI;
  const requestIds: string[] = [];
  const metrics = () => scrape(`${stack.gatewayUrl}/metrics`);
  const chat = (model: string, extra: object = {}) => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hello' }], ...extra });
  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 200,
      (e: { status?: number }) => e.status ?? 0,
    );

  beforeAll(async () => {
    openai = await FakeProvider.start({ flavor: 'openai', models: [...DEFAULT_MODELS.openai, 'vendor/known'] });
    backup = await FakeProvider.start({ flavor: 'openai' });
    flaky = await FakeProvider.start({ flavor: 'openai' });
    // `silent`: the ledger test below makes flushes fail on purpose, which would log errors.
    stack = await startStack({ logLevel: 'silent' });
    tenant = await seedTenant(stack, {
      tenant: 'acme',
      provider: { kind: 'openai', name: 'openai', baseUrl: openai.baseUrl },
      patterns: ['gpt-4o-mini', 'text-embedding-3-small', 'vendor/*'],
    });
    await addFailoverRoutes(stack, tenant.providerId, { backupUrl: backup.baseUrl, flakyUrl: flaky.baseUrl });
    client = new OpenAI({
      apiKey: tenant.secret,
      baseURL: stack.baseURL,
      maxRetries: 0,
      // Every request id the gateway hands out, to prove none becomes a label.
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        const id = res.headers.get('x-request-id');
        if (id) requestIds.push(id);
        return res;
      },
    });
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([openai?.close(), backup?.close(), flaky?.close()]);
  });

  beforeEach(() => {
    openai.reset();
    backup.reset();
  });

  it('a success counts the request, its latency and TTFB, tokens and cost by tenant and model', async () => {
    const before = await metrics();
    const r = await chat('gpt-4o-mini');
    const after = await metrics();
    const req = { tenant: 'acme', model: 'gpt-4o-mini', provider: 'openai', endpoint: 'chat', status_class: '2xx' };
    expect(delta(before, after, 'gateway_requests_total', req)).toBe(1);
    expect(delta(before, after, 'gateway_request_duration_seconds_count', { tenant: 'acme', endpoint: 'chat', provider: 'openai', streamed: 'false' })).toBe(1);
    expect(
      delta(before, after, 'gateway_request_duration_seconds_bucket', { tenant: 'acme', endpoint: 'chat', provider: 'openai', streamed: 'false', le: '+Inf' }),
    ).toBe(1);
    expect(delta(before, after, 'gateway_time_to_first_byte_seconds_count', { endpoint: 'chat', provider: 'openai', streamed: 'false' })).toBe(1);
    expect(delta(before, after, 'gateway_tokens_total', { tenant: 'acme', model: 'gpt-4o-mini', direction: 'input' })).toBe(r.usage!.prompt_tokens);
    expect(delta(before, after, 'gateway_tokens_total', { tenant: 'acme', model: 'gpt-4o-mini', direction: 'output' })).toBe(r.usage!.completion_tokens);
    const cost = (r.usage!.prompt_tokens * GPT_4O_MINI.input + r.usage!.completion_tokens * GPT_4O_MINI.output) / 1e6;
    expect(delta(before, after, 'gateway_cost_usd_total', { tenant: 'acme', model: 'gpt-4o-mini' })).toBeCloseTo(cost, 12);
    expect(delta(before, after, 'gateway_upstream_attempts_total', { provider: 'openai', result: 'ok' })).toBe(1);
    expect(delta(before, after, 'gateway_upstream_attempts_total', { provider: 'openai', result: 'error' })).toBe(0);
    expect(delta(before, after, 'http_requests_total', { app: 'gateway', method: 'POST', route: '/v1/chat/completions', status_class: '2xx' })).toBe(1);
    expect(delta(before, after, 'http_request_duration_seconds_count', { app: 'gateway', method: 'POST', route: '/v1/chat/completions' })).toBe(1);
  });

  it('a stream is observed as streamed, with its time to first byte and its usage', async () => {
    const before = await metrics();
    const s = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of s) if (c.usage) usage = c.usage;
    const after = await metrics();
    expect(usage).toBeDefined();
    expect(delta(before, after, 'gateway_request_duration_seconds_count', { tenant: 'acme', endpoint: 'chat', streamed: 'true' })).toBe(1);
    expect(delta(before, after, 'gateway_time_to_first_byte_seconds_count', { endpoint: 'chat', provider: 'openai', streamed: 'true' })).toBe(1);
    expect(delta(before, after, 'gateway_tokens_total', { tenant: 'acme', model: 'gpt-4o-mini', direction: 'output' })).toBe(usage!.completion_tokens);
    expect(delta(before, after, 'gateway_requests_total', { tenant: 'acme', model: 'gpt-4o-mini', endpoint: 'chat', status_class: '2xx' })).toBe(1);
  });

  it('a stream that breaks after its head counts as a 5xx and as a `stream` error of its provider', async () => {
    const chunks = openai.options.streamChunks;
    openai.options.streamChunks = 6;
    openai.dropMidStreamNext(1, 2);
    try {
      const before = await metrics();
      const s = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
      await (async () => {
        for await (const _ of s) void _;
      })().catch(() => undefined);
      const after = await metrics();
      expect(delta(before, after, 'gateway_upstream_errors_total', { provider: 'openai', reason: 'stream' })).toBe(1);
      expect(delta(before, after, 'gateway_requests_total', { tenant: 'acme', provider: 'openai', status_class: '5xx' })).toBe(1);
      expect(delta(before, after, 'gateway_upstream_attempts_total', { provider: 'openai', result: 'ok' })).toBe(1);
    } finally {
      openai.options.streamChunks = chunks;
    }
  });

  it('embeddings count under their own endpoint', async () => {
    const before = await metrics();
    const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'abc' });
    const after = await metrics();
    expect(
      delta(before, after, 'gateway_requests_total', { tenant: 'acme', model: 'text-embedding-3-small', endpoint: 'embeddings', status_class: '2xx' }),
    ).toBe(1);
    expect(delta(before, after, 'gateway_tokens_total', { model: 'text-embedding-3-small', direction: 'input' })).toBe(r.usage.prompt_tokens);
  });

  it('an upstream failure is retried, then counted by provider and reason, and as a 5xx', async () => {
    openai.failNext(2, 503);
    const before = await metrics();
    expect(await outcome(chat('gpt-4o-mini'))).toBe(503);
    const after = await metrics();
    expect(delta(before, after, 'gateway_upstream_errors_total', { provider: 'openai', reason: 'http_503' })).toBe(2);
    expect(delta(before, after, 'gateway_upstream_attempts_total', { provider: 'openai', result: 'error' })).toBe(2);
    expect(delta(before, after, 'gateway_upstream_retries_total', { provider: 'openai' })).toBe(1);
    expect(delta(before, after, 'gateway_requests_total', { tenant: 'acme', model: 'gpt-4o-mini', provider: 'openai', status_class: '5xx' })).toBe(1);
  });

  it('a retry that succeeds counts one error, one retry and one ok attempt', async () => {
    openai.failNext(1, 502);
    const before = await metrics();
    expect(await outcome(chat('gpt-4o-mini'))).toBe(200);
    const after = await metrics();
    expect(delta(before, after, 'gateway_upstream_errors_total', { provider: 'openai', reason: 'http_502' })).toBe(1);
    expect(delta(before, after, 'gateway_upstream_retries_total', { provider: 'openai' })).toBe(1);
    expect(delta(before, after, 'gateway_upstream_attempts_total', { provider: 'openai', result: 'ok' })).toBe(1);
    expect(delta(before, after, 'gateway_requests_total', { status_class: '2xx' })).toBe(1);
  });

  it('a fallback counts against the provider given up on, the answer against the one that served', async () => {
    openai.failNext(1, 500);
    const before = await metrics();
    expect(await outcome(chat('ha-model'))).toBe(200);
    const after = await metrics();
    expect(delta(before, after, 'gateway_upstream_fallbacks_total', { provider: 'openai' })).toBe(1);
    expect(delta(before, after, 'gateway_upstream_errors_total', { provider: 'openai', reason: 'http_500' })).toBe(1);
    expect(delta(before, after, 'gateway_upstream_attempts_total', { provider: 'backup', result: 'ok' })).toBe(1);
    expect(delta(before, after, 'gateway_requests_total', { model: 'ha-model', provider: 'backup', status_class: '2xx' })).toBe(1);
  });

  it('an unrouted model is labelled `unrouted`; a glob route labels names only once an upstream served them', async () => {
    const before = await metrics();
    expect(await outcome(chat('no-such-model-4711'))).toBe(404);
    expect(await outcome(chat('vendor/made-up-4711'))).toBe(404);
    expect(await outcome(chat('vendor/known'))).toBe(200);
    const after = await metrics();
    expect(delta(before, after, 'gateway_requests_total', { tenant: 'acme', model: 'unrouted', provider: 'none', status_class: '4xx' })).toBe(1);
    expect(delta(before, after, 'gateway_requests_total', { tenant: 'acme', model: 'vendor/*', provider: 'openai', status_class: '4xx' })).toBe(1);
    expect(delta(before, after, 'gateway_requests_total', { tenant: 'acme', model: 'vendor/known', status_class: '2xx' })).toBe(1);
    expect(delta(before, after, 'http_requests_total', { app: 'gateway', route: '/v1/chat/completions', status_class: '4xx' })).toBe(2);
    expect(after.text).not.toContain('4711');
  });

  it('requests in flight go up while a slow request runs and back down after it', async () => {
    openai.options.latencyMs = 800;
    try {
      const base = metricValue(await metrics(), 'gateway_requests_in_flight', { endpoint: 'chat' });
      const pending = chat('gpt-4o-mini');
      const during = await eventually(async () => metricValue(await metrics(), 'gateway_requests_in_flight', { endpoint: 'chat' }) === base + 1, 700, 20);
      expect(during).toBe(true);
      await pending;
      expect(metricValue(await metrics(), 'gateway_requests_in_flight', { endpoint: 'chat' })).toBe(base);
    } finally {
      openai.options.latencyMs = 0;
    }
  });

  it('the ledger reports rows written, flush latency, queue depth, and failing flushes', async () => {
    await stack.flushLedger();
    const before = await metrics();
    await chat('gpt-4o-mini');
    await chat('gpt-4o-mini');
    await stack.flushLedger();
    const flushed = await metrics();
    expect(delta(before, flushed, 'gateway_ledger_rows_written_total')).toBe(2);
    expect(delta(before, flushed, 'gateway_ledger_flush_seconds_count', { result: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(flushed, 'gateway_ledger_queue_depth')).toBe(0);

    // The table going away makes every flush fail: rows stay queued, failures are counted. (TypeORM
    // reports each failed INSERT on console.log: expected here, so kept out of the test output.)
    const quiet = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    await stack.sql('ALTER TABLE usage_records RENAME TO usage_records_away');
    try {
      await chat('gpt-4o-mini');
      // (A batch being written is out of the queue: look for a scrape between two failed attempts.)
      const failing = await eventually(
        async () => {
          const s = await metrics();
          return delta(flushed, s, 'gateway_ledger_flush_seconds_count', { result: 'error' }) >= 1 && metricValue(s, 'gateway_ledger_queue_depth') >= 1
            ? s
            : undefined;
        },
        5000,
        20,
      );
      expect(failing).toBeDefined();
      expect(metricValue(failing, 'gateway_ledger_queue_depth')).toBe(1);
    } finally {
      await stack.sql('ALTER TABLE usage_records_away RENAME TO usage_records');
      await stack.flushLedger();
      quiet.mockRestore();
    }
    const recovered = await metrics();
    expect(metricValue(recovered, 'gateway_ledger_queue_depth')).toBe(0);
    expect(delta(flushed, recovered, 'gateway_ledger_rows_written_total')).toBe(1);
  });

  it('rate-limit refusals are counted by tenant and kind', async () => {
    const t = await seedTenant(stack, { tenant: 'limited', provider: { kind: 'openai', name: 'openai', baseUrl: openai.baseUrl } });
    await stack.api('PATCH', `/admin/tenants/${t.tenantId}`, { limits: { requestsPerMinute: 1 } });
    const c = new OpenAI({ apiKey: t.secret, baseURL: stack.baseURL, maxRetries: 0 });
    await new Promise((r) => setTimeout(r, 300)); // the key cache picks the new limits up within cacheRefreshMs
    const before = await metrics();
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(await outcome(c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })));
    const refused = statuses.filter((s) => s === 429).length;
    expect(refused).toBe(2);
    const after = await metrics();
    const counted = delta(before, after, 'gateway_rate_limited_total', { tenant: 'limited' });
    expect(`refusals counted (libs/limits reports them with GatewayMetrics.rateLimited): ${counted}`).toBe(
      `refusals counted (libs/limits reports them with GatewayMetrics.rateLimited): ${refused}`,
    );
    expect(delta(before, after, 'gateway_rate_limited_total', { tenant: 'limited', kind: 'requests' })).toBe(refused);
    expect(delta(before, after, 'gateway_requests_total', { tenant: 'limited', status_class: '4xx' })).toBe(refused);
  });

  it('budget refusals and budget utilisation are reported per tenant and period', async () => {
    const t = await seedTenant(stack, { tenant: 'thrifty', provider: { kind: 'openai', name: 'openai', baseUrl: openai.baseUrl } });
    // Room for a few small requests (each reserves its prompt plus 5 output tokens), then refusals.
    await stack.api('PATCH', `/admin/tenants/${t.tenantId}`, { limits: { dailyBudgetUsd: 0.00002 } });
    const c = new OpenAI({ apiKey: t.secret, baseURL: stack.baseURL, maxRetries: 0 });
    await new Promise((r) => setTimeout(r, 300));
    const before = await metrics();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++)
      statuses.push(await outcome(c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 5 })));
    const refused = statuses.filter((s) => s === 429).length;
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(refused).toBeGreaterThanOrEqual(1);
    const after = await metrics();
    const counted = delta(before, after, 'gateway_budget_refusals_total', { tenant: 'thrifty', period: 'daily' });
    expect(`refusals counted (libs/limits reports them with GatewayMetrics.budgetRefused): ${counted}`).toBe(
      `refusals counted (libs/limits reports them with GatewayMetrics.budgetRefused): ${refused}`,
    );
    const ratio = metricValue(after, 'gateway_budget_utilisation_ratio', { tenant: 'thrifty', period: 'daily' });
    expect(ratio).toBeGreaterThan(0.2);
    expect(ratio).toBeLessThanOrEqual(1.5);
  });

  it('circuit breaker state is exported one-hot per provider target', async () => {
    flaky.failNext(20, 503);
    const before = await metrics();
    for (let i = 0; i < 8; i++) await outcome(chat('flaky-model'));
    const after = await metrics();
    flaky.reset();
    expect(metricValue(after, 'gateway_circuit_state', { provider: 'flaky', state: 'open' })).toBe(1);
    expect(metricValue(after, 'gateway_circuit_state', { provider: 'flaky', state: 'closed' })).toBe(0);
    expect(delta(before, after, 'gateway_upstream_errors_total', { provider: 'flaky', reason: 'circuit_open' })).toBeGreaterThanOrEqual(1);
  });

  it('process metrics are exposed, and the admin app serves its own HTTP metrics', async () => {
    const s = await metrics();
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(metricValue(s, name)).toBeGreaterThan(0);
    }
    const admin = () => scrape(`${stack.adminUrl}/metrics`);
    const before = await admin();
    expect((await stack.api('GET', `/admin/tenants/${tenant.tenantId}`)).status).toBe(200);
    expect((await stack.api('GET', '/admin/tenants', undefined, 'wrong-token-0123456789')).status).toBe(401);
    const after = await admin();
    expect(delta(before, after, 'http_requests_total', { app: 'admin', method: 'GET', route: '/admin/tenants/:id', status_class: '2xx' })).toBe(1);
    expect(delta(before, after, 'http_requests_total', { app: 'admin', method: 'GET', route: '/admin/tenants', status_class: '4xx' })).toBe(1);
    expect(metricValue(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    // Ids stay out of the route label: it is the pattern.
    expect(after.text).not.toContain(tenant.tenantId);
  });

  it('labels are bounded: no key secret, key id, request id or unserved model name in any label', async () => {
    const s = await metrics();
    const values = new Set(s.samples.flatMap((x) => Object.values(x.labels)));
    expect(requestIds.length).toBeGreaterThan(10);
    for (const v of values) {
      expect(v).not.toContain(tenant.secret);
      expect(v).not.toContain(tenant.keyId);
      expect(v).not.toMatch(/^req_/);
      expect(requestIds).not.toContain(v);
    }
    const models = new Set(s.samples.filter((x) => x.name === 'gateway_requests_total').map((x) => x.labels.model));
    expect([...models].sort()).toEqual(['gpt-4o-mini', 'ha-model', 'text-embedding-3-small', 'unrouted', 'vendor/*', 'vendor/known', 'flaky-model'].sort());
  });

  it('docs/operations.md lists every gateway_* and http_* metric exposed, with its type and labels', async () => {
    const s = await metrics();
    const doc = readFileSync(join(__dirname, '..', 'docs', 'operations.md'), 'utf8');
    const rows = [...doc.matchAll(/^\|\s*`((?:gateway|http)_[a-z_]+)`\s*\|\s*(\w+)\s*\|\s*([^|]*)\|/gm)]
      .map((m) => ({
        name: m[1],
        type: m[2],
        labels: [...m[3].matchAll(/`([a-z_]+)`/g)].map((l) => l[1]).sort(),
      }))
      // Added by the cluster primary (GATEWAY_WORKERS > 1): checked by workers.e2e-spec.ts.
      .filter((r) => !r.name.startsWith('gateway_worker'));
    expect(rows.length).toBeGreaterThanOrEqual(15);
    const exposed = [...s.families].filter((f) => /^(gateway|http)_/.test(f)).sort();
    expect(rows.map((r) => r.name).sort()).toEqual(exposed);
    for (const r of rows) {
      expect(`${r.name}: ${s.types.get(r.name)}`).toBe(`${r.name}: ${r.type}`);
      const series = s.samples.filter((x) => x.name === r.name || x.name.startsWith(`${r.name}_`));
      if (!series.length) continue; // e.g. circuit state before any breaker reported
      const seen = [...new Set(series.flatMap((x) => Object.keys(x.labels)).filter((l) => l !== 'le'))].sort();
      expect(`${r.name}: ${seen.join(', ')}`).toBe(`${r.name}: ${r.labels.join(', ')}`);
    }
  });

  // Last: a replica in the same process takes over the passport strategies of the stack's gateway.
  it('with METRICS_TOKEN set, /metrics needs it as a Bearer token; health checks stay open', async () => {
    const token = 'metrics-token-0123456789abcdef';
    const replica = await startGatewayReplica(stack, { metricsToken: token });
    try {
      const anon = await fetch(`${replica.gatewayUrl}/metrics`);
      expect(anon.status).toBe(401);
      expect(anon.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(((await anon.json()) as { error: { code: string } }).error.code).toBe('missing_api_key');
      for (const auth of [`Bearer ${token}x`, `Bearer ${tenant.secret}`, token]) {
        const r = await fetch(`${replica.gatewayUrl}/metrics`, { headers: { authorization: auth } });
        expect(`${auth} → ${r.status}`).toBe(`${auth} → 401`);
        expect(await r.text()).not.toContain('gateway_requests_total');
      }
      const ok = await fetch(`${replica.gatewayUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(parseExposition(await ok.text()).families.has('gateway_requests_total')).toBe(true);
      for (const path of ['/healthz', '/readyz']) expect((await fetch(`${replica.gatewayUrl}${path}`)).status).toBe(200);
      // Without the setting (the stack's own gateway), loopback clients are served (others get a 403: metrics.auth.spec.ts).
      expect((await fetch(`${stack.gatewayUrl}/metrics`)).status).toBe(200);
    } finally {
      await replica.close();
    }
  });
});
