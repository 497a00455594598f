import { join } from 'node:path';
import { FakeProvider, Stack, delta, runCodexExec, scrape, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(120_000);

interface Ev {
  type: string;
  [k: string]: any;
}

/** POSTs /v1/responses and reads the whole SSE answer. */
async function responsesStream(stack: Stack, key: string, body: object): Promise<{ status: number; headers: Headers; events: Ev[] }> {
  const res = await fetch(`${stack.baseURL}/responses`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  const text = await res.text();
  const events = text
    .split('\n\n')
    .map((f) => /^data: (.+)$/m.exec(f)?.[1])
    .filter((d): d is string => !!d)
    .map((d) => JSON.parse(d) as Ev);
  return { status: res.status, headers: res.headers, events };
}

const doneItems = (events: Ev[]): any[] => events.filter((e) => e.type === 'response.output_item.done').map((e) => e.item);

/**
 * Responses ↔ Chat fidelity through the gateway, with the fake OpenRouter and Ollama on loopback (one stack
 * for the file): reasoning comes back as Codex shows it and goes back next turn, tool names are made valid and
 * mapped back, mapped fields reach the provider that takes them, and what cannot be translated is reported.
 * Last, one real Codex run on a chat-only provider: reasoning items, and an MCP tool reached through tool_search.
 */
describe('Responses → chat-only providers: nothing dropped silently', () => {
  let stack: Stack;
  const fakes: Partial<Record<'openrouter' | 'ollama', FakeProvider>> = {};
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    stack = await startStack();
    for (const flavor of ['openrouter', 'ollama'] as const) {
      fakes[flavor] = await FakeProvider.start({ flavor, streamChunks: 2 });
    }
    keys.openrouter = (
      await seedTenant(stack, {
        provider: { kind: 'openrouter', baseUrl: fakes.openrouter!.baseUrl, credential: 'sk-or' },
        patterns: ['anthropic/claude-3.5-sonnet'],
      })
    ).secret;
    const ollama = await seedTenant(stack, { provider: { kind: 'ollama', baseUrl: fakes.ollama!.baseUrl }, patterns: ['gpt-oss:20b'] });
    keys.ollama = ollama.secret;
    // Codex's bundled model name (it hides MCP tools behind tool_search for it), served by the Ollama fake.
    const r = await stack.api('POST', '/admin/routes', { modelPattern: 'gpt-5.5', targets: [{ providerId: ollama.providerId, model: 'gpt-oss:20b' }] });
    if (r.status !== 201) throw new Error(`route: ${r.status} ${JSON.stringify(r.body)}`);
  });
  afterAll(async () => {
    await stack?.close();
    for (const f of Object.values(fakes)) await f?.close();
  });

  const request = {
    input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Read the file.' }] }],
    tools: [
      { type: 'function', name: 'files.read', description: 'Reads a file.', parameters: { type: 'object', properties: { path: { type: 'string' } } } },
      { type: 'web_search' },
    ],
    reasoning: { effort: 'minimal', summary: 'auto' },
    text: { verbosity: 'low' },
    prompt_cache_key: 'sess-123',
    service_tier: 'priority',
  };

  describe.each([
    ['openrouter', 'anthropic/claude-3.5-sonnet', 'tools:web_search,service_tier'],
    ['ollama', 'gpt-oss:20b', 'tools:web_search,prompt_cache_key,text.verbosity,service_tier'],
  ] as const)('%s', (flavor, model, droppedHeader) => {
    it('turn 1: reasoning as summary events, a valid tool name mapped back, mapped fields sent, the rest reported; turn 2 sends the reasoning back', async () => {
      const fake = fakes[flavor]!;
      fake.reset();
      const before = await scrape(`${stack.gatewayUrl}/metrics`);
      fake.script(
        { reasoning: 'The user wants the file.', toolCalls: [{ id: 'call_r1', name: 'files_read', arguments: '{"path":"a.txt"}' }] },
        { text: 'It says hi.' },
      );

      const t1 = await responsesStream(stack, keys[flavor], { model, ...request });
      expect(t1.status).toBe(200);
      expect(t1.headers.get('x-gateway-dropped')).toBe(droppedHeader);

      // What the provider got: a chat-valid tool name, the fields it takes in its own shape, nothing it does not.
      const sent = fake.requestsTo('/chat/completions')[0].body;
      expect(sent.tools.map((t: any) => t.function.name)).toEqual(['files_read']);
      if (flavor === 'openrouter') {
        expect(sent).toMatchObject({ reasoning: { effort: 'minimal' }, verbosity: 'low', prompt_cache_key: 'sess-123' });
        expect(sent).not.toHaveProperty('service_tier');
      } else {
        expect(sent.reasoning_effort).toBe('low'); // Ollama accepts high/medium/low/none only
        for (const k of ['prompt_cache_key', 'verbosity', 'service_tier', 'reasoning']) expect(sent).not.toHaveProperty(k);
      }

      // What Codex gets: the reasoning as summary events and a reasoning item, the call under its own name.
      const summary = t1.events
        .filter((e) => e.type === 'response.reasoning_summary_text.delta')
        .map((e) => e.delta)
        .join('');
      expect(summary).toBe('The user wants the file.');
      const [reasoning, call] = doneItems(t1.events);
      expect(reasoning).toMatchObject({ type: 'reasoning', summary: [{ type: 'summary_text', text: 'The user wants the file.' }] });
      if (flavor === 'openrouter') expect(reasoning.encrypted_content).toMatch(/^gw\.rd1\./);
      else expect(reasoning).not.toHaveProperty('encrypted_content');
      expect(call).toMatchObject({ type: 'function_call', name: 'files.read', call_id: 'call_r1', arguments: '{"path":"a.txt"}' });

      // Turn 2, as Codex sends it: the output items back plus the tool's output.
      const t2 = await responsesStream(stack, keys[flavor], {
        model,
        ...request,
        input: [...request.input, reasoning, call, { type: 'function_call_output', call_id: 'call_r1', output: 'hi' }],
      });
      expect(t2.status).toBe(200);
      const asst = fake.requestsTo('/chat/completions')[1].body.messages.find((m: any) => m.role === 'assistant');
      expect(asst.reasoning).toBe('The user wants the file.');
      expect(asst.tool_calls[0].function.name).toBe('files_read');
      if (flavor === 'openrouter') {
        // OpenRouter's blocks go back verbatim, signature included.
        expect(asst.reasoning_details).toEqual([
          { type: 'reasoning.text', text: 'The user wants the file.', format: 'anthropic-claude-v1', index: 0, signature: 'sig-fake' },
        ]);
      } else {
        expect(asst).not.toHaveProperty('reasoning_details');
      }

      const after = await scrape(`${stack.gatewayUrl}/metrics`);
      expect(delta(before, after, 'gateway_translation_dropped_total', { field: 'tools:web_search' })).toBe(2);
      expect(delta(before, after, 'gateway_translation_dropped_total', { field: 'service_tier' })).toBe(2);
    });
  });

  it('non-stream: a reasoning item first, and the header', async () => {
    const fake = fakes.openrouter!;
    fake.reset();
    fake.script({ reasoning: 'Short thought.', text: 'Answer.' });
    const res = await fetch(`${stack.baseURL}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.openrouter}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'anthropic/claude-3.5-sonnet', input: 'hi', tools: [{ type: 'image_generation' }] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-gateway-dropped')).toBe('tools:image_generation');
    const body = (await res.json()) as { output: any[] };
    expect(body.output.map((i) => i.type)).toEqual(['reasoning', 'message']);
    expect(body.output[0].summary).toEqual([{ type: 'summary_text', text: 'Short thought.' }]);
  });

  it('Codex on a chat-only provider: reasoning items come back, and an MCP tool hidden behind tool_search is found and called', async () => {
    const fake = fakes.ollama!;
    fake.reset();
    fake.script(
      { reasoning: 'I need a tool to look facts up.', toolCalls: [{ id: 'call_search', name: 'tool_search', arguments: '{"query":"lookup fact","limit":3}' }] },
      { toolCalls: [{ id: 'call_fact', name: 'mcp__facts__lookup_fact', arguments: '{"key":"answer"}' }] },
      { text: 'The fact is forty-two.' },
    );
    const server = join(__dirname, 'support', 'facts.mcp-server.js');
    const r = await runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: keys.ollama,
      model: 'gpt-5.5',
      prompt: 'Look up the fact called answer.',
      args: ['--json'],
      extraConfig: `[mcp_servers.facts]\ncommand = "node"\nargs = [${JSON.stringify(server)}]`,
      timeoutMs: 90_000,
    });
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    const items = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { type: string; item?: { type: string; text?: string } })
      .filter((e) => e.type === 'item.completed')
      .map((e) => e.item!);
    expect(items.find((i) => i.type === 'reasoning')?.text).toContain('I need a tool to look facts up.');
    expect(items.find((i) => i.type === 'agent_message')?.text).toBe('The fact is forty-two.');

    const calls = fake.requestsTo('/chat/completions').map((c) => c.body);
    expect(calls).toHaveLength(3);
    // Turn 1: Codex offered tool_search (the MCP tool itself hidden); it became a function.
    expect(calls[0].tools.map((t: any) => t.function.name)).toContain('tool_search');
    expect(calls[0].tools.map((t: any) => t.function.name)).not.toContain('mcp__facts__lookup_fact');
    // Turn 2: Codex ran the search; the found tool is callable, and the reasoning went back.
    expect(calls[1].tools.map((t: any) => t.function.name)).toContain('mcp__facts__lookup_fact');
    const searchTurn = calls[1].messages.find((m: any) => m.role === 'assistant' && m.tool_calls?.[0]?.function.name === 'tool_search');
    expect(searchTurn.reasoning).toBe('I need a tool to look facts up.');
    expect(calls[1].messages.find((m: any) => m.role === 'tool' && m.tool_call_id === 'call_search').content).toContain('mcp__facts__lookup_fact');
    // Turn 3: Codex called the MCP tool (namespace mapped back) and sent its real output.
    expect(calls[2].messages.find((m: any) => m.role === 'tool' && m.tool_call_id === 'call_fact').content).toContain('fact(answer)=forty-two');
  });
});
