import { FakeProvider, Stack, runCodexExec, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(120_000);

/**
 * The real Codex CLI (`@openai/codex`, pinned devDependency) pointed at the gateway with a tenant key.
 * The fake provider asks for Codex's shell tool in turn 1; Codex runs it and sends the output back;
 * turn 2 answers. Once through a provider that speaks the Responses API (pass-through) and once through
 * a chat-only provider (translated).
 */
describe.each([
  ['pass-through (openai)', 'openai' as const, 'gpt-4o-mini', '/responses'],
  ['translated (ollama)', 'ollama' as const, 'gpt-oss:20b', '/chat/completions'],
])('Codex CLI through the gateway, %s', (_label, flavor, model, upstreamPath) => {
  let stack: Stack;
  let fake: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor });
    stack = await startStack();
    tenant = await seedTenant(stack, { provider: { kind: flavor, baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: [model] });
  });
  afterAll(async () => {
    await stack?.close();
    await fake?.close();
  });

  it('runs a tool call and prints the final answer; usage is in the ledger', async () => {
    fake.script(
      { toolCalls: [{ id: 'call_shell_1', name: 'exec_command', arguments: JSON.stringify({ cmd: 'echo hi-from-codex-$((6*7))' }) }] },
      { text: 'All done: the command printed the answer.' },
    );
    const r = await runCodexExec({ baseUrl: stack.baseURL, apiKey: tenant.secret, model, prompt: 'Run the echo command and report.', timeoutMs: 90_000 });
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('All done: the command printed the answer.');

    const calls = fake.requestsTo(upstreamPath);
    expect(calls).toHaveLength(2);
    // Codex authenticated with the tenant key; the provider saw the gateway's credential, never the tenant's key.
    expect(JSON.stringify(calls.map((c) => c.headers))).not.toContain(tenant.secret);
    const second = JSON.stringify(calls[1].body);
    expect(second).toContain('hi-from-codex-42'); // the tool's real output went back upstream
    if (upstreamPath === '/chat/completions') {
      const tool = calls[1].body.messages.find((m: any) => m.role === 'tool');
      expect(tool.tool_call_id).toBe('call_shell_1');
      expect(tool.content).toContain('hi-from-codex-42');
    } else {
      expect(calls[1].body.input.some((i: any) => i.type === 'function_call_output' && i.call_id === 'call_shell_1')).toBe(true);
    }

    await stack.flushLedger();
    const rows = await stack.sql(`SELECT * FROM usage_records WHERE tenant_id = $1 AND endpoint = 'responses' ORDER BY started_at`, [tenant.tenantId]);
    expect(rows).toHaveLength(2);
    expect(rows.every((row) => row.status === 200 && row.streamed && row.input_tokens > 0 && row.output_tokens > 0)).toBe(true);
    expect(rows.every((row) => row.key_id === tenant.keyId)).toBe(true);
  });

  it('shows the gateway error to the user for an unknown model', async () => {
    const r = await runCodexExec({ baseUrl: stack.baseURL, apiKey: tenant.secret, model: 'no-such-model', prompt: 'hi', timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no-such-model');
  });
});
