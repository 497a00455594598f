import OpenAI from 'openai';
import { FakeProvider, Stack, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(60_000);

/** The same tests against a provider that speaks the Responses API (pass-through) and one that speaks only chat (translated). */
describe.each([
  ['pass-through (openai)', 'openai' as const, 'gpt-4o-mini', '/responses'],
  ['translated (ollama, chat only)', 'ollama' as const, 'gpt-oss:20b', '/chat/completions'],
])('/v1/responses %s', (_label, flavor, model, upstreamPath) => {
  let stack: Stack;
  let fake: FakeProvider;
  let client: OpenAI;
  let tenantId: string;

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor, apiKey: flavor === 'openai' ? 'sk-up' : undefined });
    stack = await startStack();
    const t = await seedTenant(stack, {
      provider: { kind: flavor, baseUrl: fake.baseUrl, credential: flavor === 'openai' ? 'sk-up' : undefined },
      patterns: [model],
    });
    tenantId = t.tenantId;
    client = new OpenAI({ apiKey: t.secret, baseURL: stack.baseURL, maxRetries: 0 });
  });
  afterAll(async () => {
    await stack?.close();
    await fake?.close();
  });
  beforeEach(() => fake.reset());

  it('responses.create (non-stream) returns the text and usage', async () => {
    const r = await client.responses.create({ model, input: 'Say hello', instructions: 'Be brief.' });
    expect(r.output_text).toBe(`Hello from fake-${flavor} (${model})`);
    expect(r.usage?.input_tokens).toBeGreaterThan(0);
    expect(r.usage?.output_tokens).toBeGreaterThan(0);
    expect(fake.requestsTo(upstreamPath)).toHaveLength(1);
    const sent = fake.requestsTo(upstreamPath)[0].body;
    if (upstreamPath === '/chat/completions') {
      expect(sent.messages[0]).toEqual({ role: 'system', content: 'Be brief.' });
      expect(sent.messages[1]).toMatchObject({ role: 'user' });
    } else {
      expect(sent.input).toBe('Say hello');
    }
  });

  it('responses.stream yields deltas and a completed response with usage', async () => {
    fake.options.streamChunks = 4;
    const stream = client.responses.stream({ model, input: [{ role: 'user', content: 'Say hello' }] });
    const types: string[] = [];
    let text = '';
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    const final = await stream.finalResponse();
    expect(text).toBe(`Hello from fake-${flavor} (${model})`);
    expect(types[0]).toBe('response.created');
    expect(types).toContain('response.output_item.done');
    expect(types[types.length - 1]).toBe('response.completed');
    expect(types.filter((t) => t === 'response.output_text.delta').length).toBe(4);
    expect(final.usage?.output_tokens).toBeGreaterThan(0);
  });

  it('streams a function call split across chunks, and sends the tool output back on the next turn', async () => {
    const args = JSON.stringify({ cmd: 'ls -la /tmp && echo "a very long argument string to split"' });
    fake.script({
      toolCalls: [
        { id: 'call_A', name: 'exec_command', arguments: args },
        { id: 'call_B', name: 'get_goal', arguments: '{}' },
      ],
    });
    const tools = [
      {
        type: 'function' as const,
        name: 'exec_command',
        description: 'run',
        parameters: { type: 'object', properties: { cmd: { type: 'string' } } },
        strict: false,
      },
      { type: 'function' as const, name: 'get_goal', description: 'goal', parameters: { type: 'object', properties: {} }, strict: false },
    ];
    const stream = client.responses.stream({ model, input: 'list files', tools });
    const done: any[] = [];
    let argDeltas = 0;
    for await (const ev of stream) {
      if (ev.type === 'response.output_item.done') done.push(ev.item);
      if (ev.type === 'response.function_call_arguments.delta') argDeltas++;
    }
    const calls = done.filter((i) => i.type === 'function_call');
    expect(calls.map((c) => c.name)).toEqual(['exec_command', 'get_goal']);
    expect(calls[0].arguments).toBe(args);
    expect(argDeltas).toBeGreaterThan(1);
    // turn 2: the client returns the tool output
    await client.responses.create({
      model,
      tools,
      input: [
        { role: 'user', content: 'list files' },
        { type: 'function_call', call_id: calls[0].call_id, name: 'exec_command', arguments: args },
        { type: 'function_call_output', call_id: calls[0].call_id, output: 'file-a\nfile-b' },
      ],
    });
    const sent = fake.requestsTo(upstreamPath)[1].body;
    if (upstreamPath === '/chat/completions') {
      const toolMsg = sent.messages.find((m: any) => m.role === 'tool');
      expect(toolMsg).toMatchObject({ tool_call_id: calls[0].call_id, content: 'file-a\nfile-b' });
      const asst = sent.messages.find((m: any) => m.role === 'assistant');
      expect(asst.tool_calls[0].function).toEqual({ name: 'exec_command', arguments: args });
      expect(sent.tools.map((t: any) => t.function.name)).toEqual(['exec_command', 'get_goal']);
    } else {
      expect(sent.input[2]).toMatchObject({ type: 'function_call_output', output: 'file-a\nfile-b' });
    }
  });

  it('meters responses calls in the ledger', async () => {
    await stack.flushLedger();
    const rows = await stack.sql(`SELECT * FROM usage_records WHERE tenant_id = $1 AND endpoint = 'responses'`, [tenantId]);
    expect(rows.length).toBeGreaterThanOrEqual(4);
    expect(rows.every((r) => r.status === 200)).toBe(true);
    expect(rows.some((r) => r.streamed && r.output_tokens > 0)).toBe(true);
  });

  it('ends a broken stream with response.failed and meters it', async () => {
    fake.options.streamChunks = 10;
    fake.dropMidStreamNext(1, 6);
    const res = await fetch(`${stack.baseURL}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${(client as any).apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, input: 'hi', stream: true }),
    });
    const text = await res.text();
    expect(text).toContain('response.output_text.delta');
    expect(text).toContain('"type":"response.failed"');
    expect(text).not.toContain('"type":"response.completed"');
    await stack.flushLedger();
    const [row] = await stack.sql(`SELECT * FROM usage_records WHERE tenant_id = $1 ORDER BY started_at DESC LIMIT 1`, [tenantId]);
    expect(row.status).toBe(502);
    expect(row.output_tokens).toBeGreaterThan(0);
  });

  it('400s a body without input, naming the field', async () => {
    const err = await client.responses.create({ model } as any).catch((e) => e);
    expect(err.status).toBe(400);
    expect(err.param).toBe('input');
  });
});
