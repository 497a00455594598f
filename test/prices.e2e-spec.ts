/**
 * Prices from the catalog, end to end:
 *  - every model the pinned Codex CLI bundles (`codex debug models --bundled`, offline) has a price, and a price
 *    for each service tier it offers;
 *  - a request for a Codex model through the gateway is billed at the catalog price: cached input discounted,
 *    the priority tier priced, the upstream's reported tier authoritative;
 *  - an unknown model follows UNKNOWN_MODEL_PRICING: charged the fallback price (and counted) or refused with
 *    403 model_not_priced before anything is forwarded (and counted).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppConfig } from '@gw/config';
import type { INestApplication } from '@nestjs/common';
import { GenaiPricesCatalog, LedgerWriter, PriceTable, SupplementCatalog } from '@gw/metering';
import { CODEX_BIN, FakeProvider, Stack, eventually, metricValue, runCodexExec, scrape, seedTenant, startGatewayReplica, startStack } from '@gw/testing';

jest.setTimeout(60_000);

const ROOT = join(__dirname, '..');

interface BundledModel {
  slug: string;
  service_tiers?: { id: string }[];
}

/** The models the pinned binary bundles. Offline: `--bundled` skips the refresh; HOME is a throw-away dir. */
function bundledModels(): BundledModel[] {
  const home = mkdtempSync(join(tmpdir(), 'codex-models-'));
  try {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home };
    const r = spawnSync(CODEX_BIN, ['debug', 'models', '--bundled'], { env, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`codex debug models --bundled: exit ${r.status}: ${r.stderr}`);
    // stdout is one JSON document (warnings go to stderr); tolerate anything printed before it.
    const start = r.stdout.indexOf('{');
    const doc = JSON.parse(r.stdout.slice(start)) as { models?: unknown };
    if (!Array.isArray(doc.models)) throw new Error(`no "models" array in: ${r.stdout.slice(0, 200)}`);
    return doc.models.map((m) => {
      const slug = (m as { slug?: unknown }).slug;
      if (typeof slug !== 'string' || !slug) throw new Error(`a bundled model without a slug: ${JSON.stringify(m).slice(0, 200)}`);
      return m as BundledModel;
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

function codexVersion(): string {
  const home = mkdtempSync(join(tmpdir(), 'codex-version-'));
  try {
    const r = spawnSync(CODEX_BIN, ['--version'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home }, encoding: 'utf8', timeout: 30_000 });
    return r.stdout.trim();
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

describe('prices: every model the pinned Codex bundles has one', () => {
  const catalog = new GenaiPricesCatalog();
  const supplement = new SupplementCatalog(undefined, catalog);
  const table = new PriceTable({ find: async () => [] } as any, {} as any, { defaultPricePerMInput: 10, defaultPricePerMOutput: 30 } as AppConfig, {
    catalog,
    supplement,
  });
  // The aliases are reported with a warning each: expected here.
  beforeAll(() => jest.spyOn((table as any).logger, 'warn').mockImplementation(() => undefined));

  it('the binary is the pinned version', () => {
    const pinned = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies['@openai/codex'];
    expect(codexVersion()).toBe(`codex-cli ${pinned}`);
  });

  it('each bundled slug resolves to a price (override-free: supplement or catalog), and each of its service tiers too', () => {
    const models = bundledModels();
    expect(models.length).toBeGreaterThan(0);
    const unpriced = models.filter((m) => !table.isPriced([m.slug], 'openai')).map((m) => m.slug);
    expect(unpriced).toEqual([]);
    const tiersWithoutPrice = models.flatMap((m) =>
      (m.service_tiers ?? []).filter((t) => supplement.serviceTier(m.slug, t.id, 'openai') === undefined).map((t) => `${m.slug}:${t.id}`),
    );
    expect(tiersWithoutPrice).toEqual([]);
    // Nothing is priced by a catalog prefix rule (which could be a different model).
    const byPrefix = models.filter((m) => table.resolve([m.slug], 'openai').match === 'prefix').map((m) => m.slug);
    expect(byPrefix).toEqual([]);
  });
});

describe('prices: requests through the gateway are billed at catalog prices', () => {
  let stack: Stack;
  let fake: FakeProvider;
  let secret: string;

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai', models: ['gpt-6.1-sol', 'gpt-5.5', 'mystery-model'] });
    stack = await startStack();
    ({ secret } = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl }, patterns: ['gpt-6.1-sol', 'gpt-5.5', 'mystery-model'] }));
  });

  afterAll(async () => {
    await stack?.close();
    await fake?.close();
  });

  async function post(base: string, path: string, body: object): Promise<{ status: number; requestId: string; body: any }> {
    const res = await fetch(`${base}/v1/${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, requestId: res.headers.get('x-request-id')!, body: text.startsWith('{') ? JSON.parse(text) : text };
  }

  /** The ledger row's cost, once the gateway that served it (`app`, else the stack's) wrote it. */
  async function costOf(requestId: string, app?: INestApplication): Promise<{ cost: number; status: number; code: string | null }> {
    await (app ? app.get(LedgerWriter).drain() : stack.flushLedger());
    const [row] = await stack.sql(`SELECT cost_usd, status, error_code FROM usage_records WHERE request_id = $1`, [requestId]);
    return { cost: Number(row.cost_usd), status: row.status, code: row.error_code };
  }

  // 10k input of which 8k cached, 1k output.
  const usage = { input: 10_000, cached: 8_000, output: 1_000 };
  // gpt-6.1-sol (supplement): $2 input, $0.10 cached, $10 output per 1M.
  const SOL = (2_000 * 2 + 8_000 * 0.1 + 1_000 * 10) / 1e6;

  it('a Codex model over the Responses API: cached input at the cached rate, a caller without a budget pays too', async () => {
    fake.script({ usage });
    const r = await post(stack.gatewayUrl, 'responses', { model: 'gpt-6.1-sol', input: 'hi' });
    expect(r.status).toBe(200);
    expect(await costOf(r.requestId)).toEqual({ cost: SOL, status: 200, code: null });
  });

  it('priority: the request asks for it and the upstream reports it served (streamed) → 2x', async () => {
    fake.script({ usage, serviceTier: 'priority' });
    const r = await post(stack.gatewayUrl, 'responses', { model: 'gpt-6.1-sol', input: 'hi', service_tier: 'priority', stream: true });
    expect(r.status).toBe(200);
    expect(fake.requestsTo('/responses').at(-1)!.body.service_tier).toBe('priority');
    expect((await costOf(r.requestId)).cost).toBeCloseTo(2 * SOL, 8);
  });

  it("the upstream's reported tier is authoritative: asked for priority, served default → standard price", async () => {
    fake.script({ usage, serviceTier: 'default' });
    const r = await post(stack.gatewayUrl, 'chat/completions', { model: 'gpt-6.1-sol', messages: [{ role: 'user', content: 'hi' }], service_tier: 'priority' });
    expect(r.status).toBe(200);
    expect((await costOf(r.requestId)).cost).toBeCloseTo(SOL, 8);
    // The same read from a stream's terminal event (response.completed), and from a chat stream's usage chunk.
    fake.script({ usage, serviceTier: 'default' });
    const s = await post(stack.gatewayUrl, 'responses', { model: 'gpt-6.1-sol', input: 'hi', service_tier: 'priority', stream: true });
    expect((await costOf(s.requestId)).cost).toBeCloseTo(SOL, 8);
    fake.script({ usage, serviceTier: 'default' });
    const c = await post(stack.gatewayUrl, 'chat/completions', {
      model: 'gpt-6.1-sol',
      messages: [{ role: 'user', content: 'hi' }],
      service_tier: 'priority',
      stream: true,
    });
    expect(c.status).toBe(200);
    expect((await costOf(c.requestId)).cost).toBeCloseTo(SOL, 8);
  });

  it('the real Codex CLI in Fast mode (service_tier = "fast" → "priority") on gpt-6.1-sol: billed at priority, cached input discounted', async () => {
    const codex = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl } });
    fake.script({ usage, serviceTier: 'priority' });
    const r = await runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: codex.secret,
      model: 'gpt-6.1-sol',
      prompt: 'hi',
      extraConfig: 'service_tier = "fast"',
      timeoutMs: 30_000,
    });
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-500) }).toEqual({ code: 0, stderr: '' });
    expect(fake.requestsTo('/responses').at(-1)!.body.service_tier).toBe('priority');
    await stack.flushLedger();
    const rows = await stack.sql(`SELECT cost_usd, cached_tokens FROM usage_records WHERE key_id = $1`, [codex.keyId]);
    expect(rows).toHaveLength(1);
    expect(rows[0].cached_tokens).toBe(8_000);
    expect(Number(rows[0].cost_usd)).toBeCloseTo(2 * SOL, 8);
  });

  it('gpt-5.5 from the package catalog, at its own priority multiplier (2.5x)', async () => {
    fake.script({ usage, serviceTier: 'priority' });
    const r = await post(stack.gatewayUrl, 'chat/completions', { model: 'gpt-5.5', messages: [{ role: 'user', content: 'hi' }], service_tier: 'priority' });
    expect(r.status).toBe(200);
    // $5 input, $0.50 cached, $30 output per 1M.
    expect((await costOf(r.requestId)).cost).toBeCloseTo((2.5 * (2_000 * 5 + 8_000 * 0.5 + 1_000 * 30)) / 1e6, 8);
  });

  it('a service_tier that is not a string is a 400 naming the field', async () => {
    const r = await post(stack.gatewayUrl, 'chat/completions', { model: 'gpt-5.5', messages: [{ role: 'user', content: 'hi' }], service_tier: 7 });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param: 'service_tier', type: 'invalid_request_error' });
  });

  it('an unknown model under the default policy (fallback): served, charged the default price, counted', async () => {
    const before = metricValue(await scrape(`${stack.gatewayUrl}/metrics`), 'gateway_unpriced_requests_total', { model: 'mystery-model', outcome: 'fallback' });
    fake.script({ usage: { input: 1_000, output: 1_000 } });
    const r = await post(stack.gatewayUrl, 'chat/completions', { model: 'mystery-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(r.status).toBe(200);
    expect((await costOf(r.requestId)).cost).toBeCloseTo((1_000 * 10 + 1_000 * 30) / 1e6, 8);
    const after = await scrape(`${stack.gatewayUrl}/metrics`);
    expect(metricValue(after, 'gateway_unpriced_requests_total', { model: 'mystery-model', outcome: 'fallback' }) - before).toBe(1);
    expect(metricValue(after, 'gateway_priced_requests_total', { source: 'supplement', match: 'exact' })).toBeGreaterThanOrEqual(3);
  });

  it("per tenant and key (limits.unknownModelPricing): the tenant's setting replaces the gateway's, a key can only tighten it", async () => {
    const t = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl } });
    const chat = (key: string) =>
      fetch(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mystery-model', messages: [{ role: 'user', content: 'hi' }] }),
      });
    const bad = await stack.api('PATCH', `/admin/tenants/${t.tenantId}`, { limits: { unknownModelPricing: 'free' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toContain('unknownModelPricing');
    expect((await stack.api('PATCH', `/admin/tenants/${t.tenantId}`, { limits: { unknownModelPricing: 'refuse' } })).status).toBe(200);
    const refused = await eventually(async () => {
      const r = await chat(t.secret);
      return r.status === 403 ? r : undefined;
    }, 3000);
    expect(((await refused.json()) as any).error.code).toBe('model_not_priced');
    // A key cannot loosen its tenant's refusal.
    const loose = await stack.api('POST', `/admin/tenants/${t.tenantId}/keys`, { name: 'loose', limits: { unknownModelPricing: 'fallback' } });
    expect(loose.status).toBe(201);
    expect((await chat(loose.body.secret)).status).toBe(403);
    // Back to the gateway's fallback for the tenant; a key that refuses still refuses.
    expect((await stack.api('PATCH', `/admin/tenants/${t.tenantId}`, { limits: { unknownModelPricing: null } })).status).toBe(200);
    const strictKey = await stack.api('POST', `/admin/tenants/${t.tenantId}/keys`, { name: 'strict', limits: { unknownModelPricing: 'refuse' } });
    fake.script({ usage: { input: 1, output: 1 } });
    const served = await eventually(async () => {
      const r = await chat(t.secret);
      return r.status === 200 ? r : undefined;
    }, 3000);
    expect(served.status).toBe(200);
    expect((await chat(strictKey.body.secret)).status).toBe(403);
  });

  it('an unknown model under UNKNOWN_MODEL_PRICING=refuse: 403 model_not_priced, never forwarded, counted; priced models still pass', async () => {
    const strict = await startGatewayReplica(stack, { unknownModelPricing: 'refuse' });
    const forwarded = fake.requestsTo('/chat/completions').length;
    const before = metricValue(await scrape(`${strict.gatewayUrl}/metrics`), 'gateway_unpriced_requests_total', { model: 'mystery-model', outcome: 'refused' });
    const r = await post(strict.gatewayUrl, 'chat/completions', { model: 'mystery-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: 'model_not_priced', type: 'permission_error' });
    expect(fake.requestsTo('/chat/completions').length).toBe(forwarded);
    expect(await costOf(r.requestId, strict.app)).toEqual({ cost: 0, status: 403, code: 'model_not_priced' });
    const after = await scrape(`${strict.gatewayUrl}/metrics`);
    expect(metricValue(after, 'gateway_unpriced_requests_total', { model: 'mystery-model', outcome: 'refused' }) - before).toBe(1);
    fake.script({ usage });
    const ok = await post(strict.gatewayUrl, 'responses', { model: 'gpt-6.1-sol', input: 'hi' });
    expect(ok.status).toBe(200);
    expect((await costOf(ok.requestId, strict.app)).cost).toBeCloseTo(SOL, 8);
  });
});
