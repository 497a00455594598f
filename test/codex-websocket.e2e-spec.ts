import { FakeProvider, ReceivedRequest, Stack, runCodexExec, seedTenant, startStack } from '@gw/testing';
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
