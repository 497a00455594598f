import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { FakeProvider, Stack, runCodexExec, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(120_000);

/** Every line of Codex's session rollouts under `home` (JSONL in ~/.codex/sessions/YYYY/MM/DD/). */
function rolloutEvents(home: string): any[] {
  const out: any[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.jsonl')) for (const line of readFileSync(p, 'utf8').split('\n')) if (line.trim()) out.push(JSON.parse(line));
    }
  };
  walk(join(home, '.codex', 'sessions'));
  return out;
}

/**
 * Issue 15 point 6 with the real Codex CLI (0.169): its headers reach a native provider on the allow-list and
 * a translated one not at all; the ledger keeps its session id and usage groups by it (cost per session);
 * Codex reads the gateway's budget headers; a spent budget prints the gateway's own words and is not retried.
 * One stack, two Codex runs per mode plus one for the budget refusal.
 */
let stack: Stack;
const fakes: Partial<Record<'openai' | 'ollama', FakeProvider>> = {};

// One stack for the file (CI time): a tenant per provider kind, each with its own fake.
beforeAll(async () => {
  fakes.openai = await FakeProvider.start({ flavor: 'openai' });
  fakes.ollama = await FakeProvider.start({ flavor: 'ollama' });
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
  await fakes.openai?.close();
  await fakes.ollama?.close();
});

describe.each([
  ['pass-through (openai)', 'openai' as const, 'gpt-4o-mini', '/responses'],
  ['translated (ollama)', 'ollama' as const, 'gpt-oss:20b', '/chat/completions'],
])('Codex headers and errors through the gateway, %s', (_label, flavor, model, upstreamPath) => {
  let fake: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;

  beforeAll(async () => {
    fake = fakes[flavor]!;
    tenant = await seedTenant(stack, { provider: { kind: flavor, baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: [model] });
    // A budget far from spent: Codex gets the x-codex-* budget headers on every answer.
    expect((await stack.api('PATCH', `/admin/tenants/${tenant.tenantId}`, { limits: { dailyBudgetUsd: 100 } })).status).toBe(200);
  });

  it("Codex's headers reach a native provider only; the ledger keeps its session; usage and cost by session; Codex reads the budget headers", async () => {
    fake.script({ text: 'first' }, { text: 'second' });
    const r = await runCodexExec({ baseUrl: stack.baseURL, apiKey: tenant.secret, model, prompt: 'Say hi.', timeoutMs: 90_000 });
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    const session = /session id: (\S+)/.exec(r.stderr)?.[1];
    expect(session).toMatch(/^[0-9a-f-]{36}$/);

    const [call] = fake.requestsTo(upstreamPath);
    const sent = call.headers;
    // never the tenant's key, nor any credential or hop-by-hop header of the client's
    expect(JSON.stringify(sent)).not.toContain(tenant.secret);
    expect(sent.authorization).toBe('Bearer sk-upstream');
    if (flavor === 'openai') {
      expect(sent).toMatchObject({ 'session-id': session, 'thread-id': session, originator: 'codex_exec', 'x-codex-beta-features': expect.any(String) });
      expect(sent['x-codex-window-id']).toContain(session);
      expect(String(sent['user-agent'])).toContain('codex_exec/0.169');
    } else {
      for (const h of ['session-id', 'thread-id', 'originator', 'x-codex-beta-features', 'x-codex-window-id', 'x-codex-turn-metadata'])
        expect(sent[h]).toBeUndefined();
    }

    await stack.flushLedger();
    const rows = await stack.sql(`SELECT session_id, cost_usd FROM usage_records WHERE tenant_id = $1 AND endpoint = 'responses'`, [tenant.tenantId]);
    expect(rows.map((x) => x.session_id)).toEqual([session]);
    const report = await stack.api('GET', `/admin/usage?tenantId=${tenant.tenantId}&groupBy=session`);
    expect(report.status).toBe(200);
    const mine = report.body.data.find((x: any) => x.sessionId === session);
    expect(mine).toMatchObject({ sessionId: session, requests: 1 });
    expect(mine.costUsd).toBeCloseTo(Number(rows[0].cost_usd), 8);
    if (flavor === 'openai') expect(mine.costUsd).toBeGreaterThan(0); // the local Ollama model is free

    // Codex recorded the gateway's budget as its rate-limit snapshot (what its status view shows).
    const limits = rolloutEvents(r.home).filter((e) => e.payload?.type === 'token_count' && e.payload.rate_limits?.primary);
    expect(limits.length).toBeGreaterThan(0);
    expect(limits[0].payload.rate_limits.primary).toMatchObject({ window_minutes: 1440 });
    expect(limits[0].payload.rate_limits.primary.used_percent).toBeGreaterThanOrEqual(0);
  });

  it("the response names the upstream's request id and the served model (never as openai-model)", async () => {
    fake.script({ text: 'ok' });
    const res = await fetch(`${stack.baseURL}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, input: 'hi' }),
    });
    expect(res.status).toBe(200);
    await res.text();
    expect(res.headers.get('x-upstream-request-id')).toMatch(/^req_/);
    expect(res.headers.get('x-upstream-request-id')).not.toBe(res.headers.get('x-request-id'));
    expect(res.headers.get('x-gateway-served-model')).toBe(model);
    expect(res.headers.get('openai-model')).toBeNull();
  });
});

describe('Codex against a spent budget', () => {
  it("prints the gateway's message (which budget, when it resets) and does not retry, even with Codex's default retries", async () => {
    const fake = fakes.openai!;
    const t = await seedTenant(stack, {
      provider: { kind: 'openai', baseUrl: fake.baseUrl, credential: 'sk-upstream' },
      patterns: ['gpt-4o-mini'],
      tenant: 'acme',
    });
    // Less than any request's useful minimum: the first request is refused for good.
    expect((await stack.api('PATCH', `/admin/tenants/${t.tenantId}`, { limits: { dailyBudgetUsd: 0.000001 } })).status).toBe(200);
    const before = fake.requestsTo('/responses').length;
    const r = await runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: t.secret,
      model: 'gpt-4o-mini',
      prompt: 'hi',
      timeoutMs: 60_000,
      // Codex's defaults (the test config turns retries off): a retryable answer would show as 5 reconnects.
      args: ['-c', 'model_providers.team.request_max_retries=4', '-c', 'model_providers.team.stream_max_retries=5'],
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /You.ve hit your usage limit\. Ask your team admin to raise the daily budget of tenant "acme" \(\$0\.000001 per UTC day\), or try again at ([A-Z][a-z]{2} \d{1,2}[a-z]{2}, \d{4} )?\d{1,2}:\d\d [AP]M\./,
    );
    expect(r.stderr).not.toContain('Reconnecting');
    expect(r.stderr).not.toContain('Quota exceeded');
    expect(fake.requestsTo('/responses')).toHaveLength(before); // refused before anything was sent
    await stack.flushLedger();
    const rows = await stack.sql(`SELECT status, error_code, session_id FROM usage_records WHERE tenant_id = $1`, [t.tenantId]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 429, error_code: 'insufficient_quota' });
    expect(rows[0].session_id).toMatch(/^[0-9a-f-]{36}$/);

    // The openai SDK (which retries 429s unless told not to) makes one request too, and sees OpenAI's code.
    const sdk = new OpenAI({ apiKey: t.secret, baseURL: stack.baseURL, maxRetries: 2 });
    await expect(sdk.responses.create({ model: 'gpt-4o-mini', input: 'hi' })).rejects.toMatchObject({
      status: 429,
      code: 'insufficient_quota',
      type: 'usage_limit_reached',
    });
    await stack.flushLedger();
    expect(await stack.sql(`SELECT 1 FROM usage_records WHERE tenant_id = $1`, [t.tenantId])).toHaveLength(2);
  });
});
