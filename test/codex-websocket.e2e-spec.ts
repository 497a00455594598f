import { FakeProvider, ReceivedRequest, Stack, eventually, runCodexExec, seedTenant, startGatewayReplica, startStack } from '@gw/testing';
import { ResponsesSocketServer } from '../apps/gateway/src/handlers/responses-socket.server';

jest.setTimeout(180_000);

const FINAL = 'Both commands ran: ws-one-7 and ws-two-8.';

/**
 * Codex's built-in OpenAI provider pointed at the gateway (`openai_base_url`, key in auth.json as `codex login
 * --with-api-key` writes it): it speaks the Responses API over a WebSocket first. The settings that keep it
 * offline are the custom provider's (test/support/codex.ts).
 */
function builtinConfig(baseUrl: string, model: string, extra: string[] = []): string {
  return [
    `model = ${JSON.stringify(model)}`,
    `openai_base_url = ${JSON.stringify(baseUrl)}`,
    'approval_policy = "never"',
    'sandbox_mode = "danger-full-access"',
    'check_for_update_on_startup = false',
    'web_search = "disabled"',
    ...extra,
    '[analytics]',
    'enabled = false',
    '[feedback]',
    'enabled = false',
    '[otel]',
    'exporter = "none"',
    'trace_exporter = "none"',
    'metrics_exporter = "none"',
    '[history]',
    'persistence = "none"',
    '[features]',
    'plugins = false',
    'apps = false',
    '',
  ].join('\n');
}

/** Two tool calls (the second after a pause, `pause` seconds), then the answer: three model calls. */
function scriptSession(fake: FakeProvider, pause = 0): void {
  fake.script(
    { toolCalls: [{ id: 'call_one', name: 'exec_command', arguments: JSON.stringify({ cmd: 'echo ws-one-$((3+4))' }) }], usage: { input: 900, output: 10 } },
    {
      toolCalls: [{ id: 'call_two', name: 'exec_command', arguments: JSON.stringify({ cmd: `${pause ? `sleep ${pause}; ` : ''}echo ws-two-$((4+4))` }) }],
      usage: { input: 1000, output: 10 },
    },
    { text: FINAL, usage: { input: 1100, output: 12 } },
  );
}

const text = (r: ReceivedRequest): string => JSON.stringify(r.body);

/** What each upstream call carried: every earlier tool output is there (the full history, never a delta). */
function expectFullHistory(calls: ReceivedRequest[]): void {
  expect(calls).toHaveLength(3);
  expect(text(calls[0])).toContain('Run both commands');
  for (const c of calls.slice(1)) expect(text(c)).toContain('Run both commands');
  expect(text(calls[1])).toContain('ws-one-7');
  expect(text(calls[2])).toContain('ws-one-7');
  expect(text(calls[2])).toContain('ws-two-8');
  for (const c of calls) expect(c.body.previous_response_id).toBeUndefined();
  // Each earlier item exactly once: the history the gateway rebuilt has no duplicates.
  const last = calls[2].body;
  if (Array.isArray(last.input)) {
    expect(last.input.filter((i: any) => i.type === 'function_call').map((i: any) => i.call_id)).toEqual(['call_one', 'call_two']);
    expect(last.input.filter((i: any) => i.type === 'function_call_output').map((i: any) => i.call_id)).toEqual(['call_one', 'call_two']);
  } else {
    expect(last.messages.filter((m: any) => m.role === 'tool').map((m: any) => m.tool_call_id)).toEqual(['call_one', 'call_two']);
  }
}

let stack: Stack;
const fakes: Partial<Record<'openai' | 'ollama', FakeProvider>> = {};
let sockets: ResponsesSocketServer;
beforeAll(async () => {
  fakes.openai = await FakeProvider.start({ flavor: 'openai' });
  fakes.ollama = await FakeProvider.start({ flavor: 'ollama' });
  stack = await startStack();
  sockets = stack.gateway.get(ResponsesSocketServer);
});
afterAll(async () => {
  await stack?.close();
  for (const f of Object.values(fakes)) await f.close();
});

describe.each([
  ['pass-through (openai)', 'openai' as const, 'gpt-4o-mini', '/responses'],
  ['translated (ollama)', 'ollama' as const, 'gpt-oss:20b', '/chat/completions'],
])("Codex's built-in provider over the gateway's WebSocket, %s", (_label, flavor, model, upstreamPath) => {
  let fake: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;
  const auth = (secret: string) => ({ 'auth.json': JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: secret }) });

  beforeAll(async () => {
    fake = fakes[flavor]!;
    tenant = await seedTenant(stack, { provider: { kind: flavor, baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: [model] });
  });
  beforeEach(() => fake.reset());

  it('a multi-turn session with tool calls: no refused upgrade, no reconnect, one ledger row per response, full input upstream; as fast as HTTP', async () => {
    const before = { ...sockets.stats };
    scriptSession(fake);
    const ws = await runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: tenant.secret,
      model,
      prompt: 'Run both commands and report.',
      timeoutMs: 120_000,
      configToml: builtinConfig(stack.baseURL, model),
      codexHomeFiles: auth(tenant.secret),
    });
    if (ws.code !== 0) console.error(ws.stderr);
    expect(ws.code).toBe(0);
    expect(ws.stdout.trim()).toBe(FINAL);
    expect(ws.stderr).not.toContain('Reconnecting');
    expect(ws.stderr).not.toContain('Falling back');
    expect(sockets.stats.upgrades - before.upgrades).toBeGreaterThanOrEqual(1);
    expect(sockets.stats.refused - before.refused).toBe(0);
    const calls = fake.requestsTo(upstreamPath);
    expectFullHistory(calls);
    if (flavor === 'openai') {
      // Codex's headers as over HTTP: each turn's own metadata, and no WebSocket beta (the provider is called over HTTP).
      for (const c of calls) {
        expect(String(c.headers['openai-beta'] ?? '')).not.toContain('responses_websockets');
        expect(JSON.parse(String(c.headers['x-codex-turn-metadata']))).toMatchObject({ request_kind: 'turn' });
      }
    }
    await stack.flushLedger();
    const rows = await stack.sql(`SELECT status FROM usage_records WHERE tenant_id = $1 AND endpoint = 'responses'`, [tenant.tenantId]);
    expect(rows).toEqual([{ status: 200 }, { status: 200 }, { status: 200 }]);

    // The same session through a custom provider (HTTP): the WebSocket costs no extra time.
    fake.reset();
    scriptSession(fake);
    const http = await runCodexExec({ baseUrl: stack.baseURL, apiKey: tenant.secret, model, prompt: 'Run both commands and report.', timeoutMs: 120_000 });
    expect(http.code).toBe(0);
    expect(http.stdout.trim()).toBe(FINAL);
    console.log(`${flavor}: Codex session over the WebSocket ${ws.durationMs} ms, over HTTP (custom provider) ${http.durationMs} ms`);
    // Before, the refused upgrades alone added 6-13 s.
    expect(ws.durationMs).toBeLessThan(http.durationMs + 1_000);
  });
});

describe('A reconnect makes Codex resend its history, and the session completes', () => {
  let fake: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;
  const auth = (secret: string) => ({ 'auth.json': JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: secret }) });

  beforeAll(async () => {
    fake = fakes.openai!;
    tenant = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: ['gpt-4o-mini'] });
  });
  beforeEach(() => fake.reset());

  it('the socket closed between turns (e.g. the replica went away): Codex reconnects with its full history', async () => {
    const before = { ...sockets.stats };
    scriptSession(fake, 2);
    const run = runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: tenant.secret,
      model: 'gpt-4o-mini',
      prompt: 'Run both commands and report.',
      timeoutMs: 120_000,
      configToml: builtinConfig(stack.baseURL, 'gpt-4o-mini'),
      codexHomeFiles: auth(tenant.secret),
    });
    // While the second command sleeps (2 s), the gateway drops every socket.
    await eventually(() => fake.requestsTo('/responses').length === 2, 60_000);
    await eventually(() => sockets.historyBytes() > 0);
    sockets.closeAll();
    const r = await run;
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(FINAL);
    expect(sockets.stats.upgrades - before.upgrades).toBeGreaterThanOrEqual(2);
    expect(sockets.stats.refused - before.refused).toBe(0);
    expectFullHistory(fake.requestsTo('/responses'));
  });

  it('a connection that no longer holds the history (over WS_HISTORY_MAX_BYTES) answers previous_response_not_found; Codex resends in full', async () => {
    await stack.flushLedger();
    const ok = `SELECT status FROM usage_records WHERE tenant_id = $1 AND endpoint = 'responses' AND status = 200`;
    const rowsBefore = (await stack.sql(ok, [tenant.tenantId])).length;
    const replica = await startGatewayReplica(stack, { wsHistoryMaxBytes: 1 });
    const server = replica.app.get(ResponsesSocketServer);
    scriptSession(fake);
    const r = await runCodexExec({
      baseUrl: replica.baseURL,
      apiKey: tenant.secret,
      model: 'gpt-4o-mini',
      prompt: 'Run both commands and report.',
      timeoutMs: 120_000,
      configToml: builtinConfig(replica.baseURL, 'gpt-4o-mini'),
      codexHomeFiles: auth(tenant.secret),
    });
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(FINAL);
    // Every incremental request was refused and resent in full on a new connection.
    expect(server.stats.upgrades).toBeGreaterThanOrEqual(3);
    expect(server.stats.refused).toBe(0);
    expectFullHistory(fake.requestsTo('/responses'));
    await stack.flushLedger();
    // One row per response; the refused continuations reached no provider and are not metered.
    expect((await stack.sql(ok, [tenant.tenantId])).length - rowsBefore).toBe(3);
  });
});
