import OpenAI from 'openai';
import { COMPACTION_PROMPT, GATEWAY_COMPACTION_PREFIX, SUMMARY_PREFIX } from '@gw/providers';
import { FakeProvider, ReceivedRequest, Stack, codexBuiltinConfigToml, fakeCompactionContent, runCodexExec, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(180_000);

/** Small enough that the first answer's reported usage (50k tokens) makes Codex compact before its next request. */
const COMPACT_LIMIT = 1000;
const SUMMARY = 'SUMMARY-OF-WORK: ran echo, saw the output.';
const FINAL = 'Done after compaction.';

/** Turn 1 asks for a command (reporting a context over the limit), then the compaction's summary, then the answer. */
function scriptSession(fake: FakeProvider): void {
  fake.script(
    {
      toolCalls: [{ id: 'call_echo', name: 'exec_command', arguments: JSON.stringify({ cmd: 'echo compact-me-$((6*7))' }) }],
      usage: { input: 50_000, output: 10 },
    },
    { text: SUMMARY, usage: { input: 400, output: 20 } },
    { text: FINAL, usage: { input: 300, output: 5 } },
  );
}

const text = (r: ReceivedRequest): string => JSON.stringify(r.body);

/**
 * Compaction through the gateway with the real Codex CLI, on a provider that speaks the Responses API (its own
 * compaction passed through) and on a chat-only one (the gateway summarises with the chat model and seals the
 * item). Codex's built-in provider compacts remotely; a custom provider compacts locally (an ordinary request).
 */
// One stack for both modes (each mode its own provider, route and tenant): CI time is counted.
let stack: Stack;
/** Both modes' providers, kept until the end: a session may move from one to the other. */
const fakes: Partial<Record<'openai' | 'ollama', FakeProvider>> = {};
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
  for (const f of Object.values(fakes)) await f.close();
});

describe.each([
  ['native (openai)', 'openai' as const, 'gpt-4o-mini', '/responses'],
  ['chat-only (ollama)', 'ollama' as const, 'gpt-oss:20b', '/chat/completions'],
])('Compaction through the gateway, %s', (_label, flavor, model, upstreamPath) => {
  const native = flavor === 'openai';
  let fake: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;

  beforeAll(async () => {
    fake = fakes[flavor] = await FakeProvider.start({ flavor });
    tenant = await seedTenant(stack, { provider: { kind: flavor, baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: [model] });
  });
  beforeEach(() => fake.reset());

  it("Codex's built-in OpenAI provider gets through a remote compaction and continues from it", async () => {
    scriptSession(fake);
    const r = await runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: tenant.secret,
      model,
      prompt: 'Run the echo command and report.',
      timeoutMs: 120_000,
      configToml: codexBuiltinConfigToml(stack.baseURL, model, [`model_auto_compact_token_limit = ${COMPACT_LIMIT}`]),
      codexHomeFiles: { 'auth.json': JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: tenant.secret }) },
    });
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('context compacted');
    expect(r.stdout.trim()).toBe(FINAL);

    const calls = fake.requestsTo(upstreamPath);
    expect(calls).toHaveLength(3);
    const [, compaction, after] = calls;
    if (native) {
      // Passed through: the trigger and Codex's beta header reach the provider; its own item comes back next turn.
      expect(compaction.body.input.at(-1)).toEqual({ type: 'compaction_trigger' });
      expect(compaction.headers['x-codex-beta-features']).toBe('remote_compaction_v2');
      expect(after.body.input.some((i: any) => i.type === 'compaction' && i.encrypted_content === fakeCompactionContent(SUMMARY))).toBe(true);
    } else {
      // The chat model was asked for the summary (no tool may be called)...
      expect(compaction.body.messages.at(-1)).toEqual({ role: 'user', content: COMPACTION_PROMPT });
      expect(compaction.body.tool_choice).toBe('none');
      expect(text(compaction)).toContain('compact-me-42');
      // ...and the next turn carries it as text: the sealed item itself never reaches a provider.
      expect(text(after)).toContain(`${SUMMARY_PREFIX}\\n${SUMMARY}`);
      expect(text(after)).not.toContain('compact-me-42');
      for (const c of calls) expect(c.rawBody).not.toContain(GATEWAY_COMPACTION_PREFIX);
    }
    await stack.flushLedger();
    const rows = await stack.sql(`SELECT endpoint, status FROM usage_records WHERE tenant_id = $1 AND endpoint = 'responses' AND status = 200`, [
      tenant.tenantId,
    ]);
    expect(rows).toHaveLength(3);
  });

  it('a custom provider gets through a (local) compaction and continues from it', async () => {
    scriptSession(fake);
    const r = await runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: tenant.secret,
      model,
      prompt: 'Run the echo command and report.',
      timeoutMs: 120_000,
      extraConfig: `model_auto_compact_token_limit = ${COMPACT_LIMIT}`,
    });
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(FINAL);
    const calls = fake.requestsTo(upstreamPath);
    expect(calls).toHaveLength(3);
    expect(text(calls[1])).not.toContain('compaction_trigger'); // Codex summarises with an ordinary request
    expect(text(calls[2])).toContain(SUMMARY);
    expect(text(calls[2])).not.toContain('compact-me-42');
  });

  it('serves POST /v1/responses/compact, metered; its item is understood on the next request', async () => {
    fake.script({ text: SUMMARY, usage: { input: 120, output: 30 } }, { text: FINAL });
    const client = new OpenAI({ apiKey: tenant.secret, baseURL: stack.baseURL, maxRetries: 0 });
    const input = [
      { role: 'user' as const, content: 'Remember the number 42.' },
      { role: 'assistant' as const, content: 'Noted: 42.' },
    ];
    const compacted = await client.responses.compact({ model, input });
    expect(compacted.object).toBe('response.compaction');
    const item = compacted.output.at(-1) as any;
    expect(item.type).toBe('compaction');
    expect(compacted.output.slice(0, -1)).toMatchObject([{ role: 'user' }]);
    expect(compacted.usage).toMatchObject({ input_tokens: 120, output_tokens: 30 });
    expect(fake.requestsTo(native ? '/responses/compact' : '/chat/completions')).toHaveLength(1);
    if (native) expect(item.encrypted_content).toBe(fakeCompactionContent(SUMMARY));
    else expect(item.encrypted_content.startsWith(GATEWAY_COMPACTION_PREFIX)).toBe(true);

    const next = await client.responses.create({ model, input: [...(compacted.output as any[]), { role: 'user', content: 'Which number?' }] });
    expect(next.output_text).toBe(FINAL);
    const sent = fake.requestsTo(upstreamPath).at(-1)!;
    if (!native) {
      expect(text(sent)).toContain(`${SUMMARY_PREFIX}\\n${SUMMARY}`);
      expect(sent.rawBody).not.toContain(GATEWAY_COMPACTION_PREFIX);
      // The session moves to a provider that speaks the Responses API: it gets the summary, never the sealed item.
      const openai = fakes.openai!;
      openai.reset();
      openai.script({ text: FINAL });
      await client.responses.create({ model: 'gpt-4o-mini', input: [...(compacted.output as any[]), { role: 'user', content: 'Which number?' }] });
      const moved = openai.requestsTo('/responses');
      expect(moved).toHaveLength(1);
      expect(text(moved[0])).toContain(`${SUMMARY_PREFIX}\\n${SUMMARY}`);
      expect(moved[0].rawBody).not.toContain(GATEWAY_COMPACTION_PREFIX);
      // Sealed for this tenant: another tenant's key cannot have it read.
      const other = await seedTenant(stack, { provider: { kind: flavor, baseUrl: fake.baseUrl, credential: 'sk-upstream' } });
      const foreign = new OpenAI({ apiKey: other.secret, baseURL: stack.baseURL, maxRetries: 0 });
      const err = await foreign.responses.create({ model, input: [item, { role: 'user', content: 'hi' }] }).catch((e) => e);
      expect(err.status).toBe(400);
      expect(err.error?.param).toBe('input[0]');
    }

    await stack.flushLedger();
    const rows = await stack.sql(`SELECT status, input_tokens, output_tokens FROM usage_records WHERE tenant_id = $1 AND endpoint = 'responses_compact'`, [
      tenant.tenantId,
    ]);
    expect(rows).toEqual([{ status: 200, input_tokens: 120, output_tokens: 30 }]);
  });
});
