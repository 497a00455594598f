/**
 * Proves FakeProvider speaks the real wire protocols: every check goes through the official
 * `openai` SDK or raw undici fetch over loopback, never through FakeProvider internals.
 */
import OpenAI, { APIError, APIUserAbortError } from 'openai';
import { fetch } from 'undici';
import { DEFAULT_MODELS, FakeFlavor, FakeProvider, fakeEmbedding } from './support/fake-provider';
import { parseSse, sseJson, waitFor } from './support/fake-provider.spec-helpers';

const KEY = 'sk-fake-test-key';
const MODEL: Record<FakeFlavor, string> = {
  openai: 'gpt-4o-mini',
  openrouter: 'openai/gpt-4o-mini',
  ollama: 'gpt-oss:20b',
};
const ROOT_PATH: Record<FakeFlavor, string> = { openai: '/v1', openrouter: '/api/v1', ollama: '/v1' };

/** Independent re-statement of the documented token rule, so a wrong implementation fails. */
const tokens = (v: unknown) => Math.ceil(JSON.stringify(v).length / 4);

async function rejection(p: Promise<unknown>): Promise<APIError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof APIError) return err;
    throw err;
  }
  throw new Error('expected the request to fail');
}

function sdk(fake: FakeProvider, extra: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}): OpenAI {
  return new OpenAI({ baseURL: fake.baseUrl, apiKey: KEY, maxRetries: 0, timeout: 5000, ...extra });
}

describe.each(['openai', 'openrouter', 'ollama'] as const)('FakeProvider flavor=%s', (flavor) => {
  const model = MODEL[flavor];
  const expectedText = `Hello from fake-${flavor} (${model})`;
  let fake: FakeProvider;
  let client: OpenAI;

  beforeEach(async () => {
    fake = await FakeProvider.start({ flavor, apiKey: KEY });
    client = sdk(fake);
  });
  afterEach(async () => {
    await fake.close();
  });

  it('exposes the flavor root and origin on loopback', () => {
    expect(fake.port).toBeGreaterThan(0);
    expect(fake.origin).toBe(`http://127.0.0.1:${fake.port}`);
    expect(fake.baseUrl).toBe(`http://127.0.0.1:${fake.port}${ROOT_PATH[flavor]}`);
    expect(fake.flavor).toBe(flavor);
  });

  it('non-stream chat: real shape, exact text, deterministic usage, request recorded', async () => {
    const messages = [
      { role: 'system' as const, content: 'be brief' },
      { role: 'user' as const, content: 'hello there' },
    ];
    const headers: Record<string, string> = { 'x-test-trace': 'trace-123' };
    if (flavor === 'openrouter') Object.assign(headers, { 'HTTP-Referer': 'https://gw.example', 'X-Title': 'gw-tests' });

    const res = await client.chat.completions.create({ model, messages, temperature: 0.2 }, { headers });

    expect(res.id).toMatch(/^chatcmpl-\w+/);
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe(model);
    expect(typeof res.created).toBe('number');
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0].message.role).toBe('assistant');
    expect(res.choices[0].message.content).toBe(expectedText);
    expect(res.choices[0].message.tool_calls).toBeUndefined();
    expect(res.choices[0].finish_reason).toBe('stop');
    const prompt = tokens(messages);
    expect(res.usage).toMatchObject({
      prompt_tokens: prompt,
      completion_tokens: 5,
      total_tokens: prompt + 5,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    const raw = res as any;
    if (flavor === 'openrouter') {
      expect(raw.provider).toBe('FakeRouter');
      expect(raw.usage.cost).toBeCloseTo(0.00001 * (prompt + 5), 12);
    } else {
      expect(raw.provider).toBeUndefined();
      expect(raw.usage.cost).toBeUndefined();
    }

    const recs = fake.requestsTo('/chat/completions');
    expect(recs).toHaveLength(1);
    expect(fake.received).toHaveLength(1);
    const rec = recs[0];
    expect(rec.method).toBe('POST');
    expect(rec.path).toBe(`${ROOT_PATH[flavor]}/chat/completions`);
    expect(rec.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(rec.headers['x-test-trace']).toBe('trace-123');
    expect(rec.headers['content-type']).toMatch(/application\/json/);
    if (flavor === 'openrouter') {
      expect(rec.headers['http-referer']).toBe('https://gw.example');
      expect(rec.headers['x-title']).toBe('gw-tests');
    }
    expect(rec.body).toEqual({ model, messages, temperature: 0.2 });
    expect(JSON.parse(rec.rawBody)).toEqual(rec.body);
    expect(rec.at).toBeGreaterThan(Date.now() - 10_000);
  });

  it('stream chat: reassembles exactly, usage chunk only with include_usage', async () => {
    const messages = [{ role: 'user' as const, content: 'stream please' }];

    const plain = await client.chat.completions.create({ model, messages, stream: true });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of plain) chunks.push(c);
    expect(chunks[0].object).toBe('chat.completion.chunk');
    expect(chunks[0].id).toMatch(/^chatcmpl-/);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const contentChunks = chunks.filter((c) => c.choices[0]?.delta.content);
    expect(contentChunks).toHaveLength(5);
    expect(contentChunks.map((c) => c.choices[0].delta.content).join('')).toBe(expectedText);
    expect(chunks.every((c) => c.usage == null)).toBe(true);
    expect(chunks.every((c) => c.id === chunks[0].id && c.model === model)).toBe(true);
    expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe('stop');

    const withUsage = await client.chat.completions.create({
      model,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks2: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of withUsage) chunks2.push(c);
    const usageChunks = chunks2.filter((c) => c.usage != null);
    expect(usageChunks).toHaveLength(1);
    const last = chunks2[chunks2.length - 1];
    expect(last).toBe(usageChunks[0]);
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({
      prompt_tokens: tokens(messages),
      completion_tokens: 5,
      total_tokens: tokens(messages) + 5,
    });
    expect(chunks2[chunks2.length - 2].choices[0].finish_reason).toBe('stop');
    if (flavor === 'openrouter') expect((last.usage as any).cost).toBeGreaterThan(0);
  });

  it('stream chat on the wire: text/event-stream data frames ending in [DONE]', async () => {
    const res = await fetch(`${fake.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }], stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    const events = parseSse(text);
    expect(events.every((e) => e.event === undefined)).toBe(true);
    // role + 5 content + finish + [DONE]
    expect(events).toHaveLength(8);
    expect(text.includes(': OPENROUTER PROCESSING')).toBe(flavor === 'openrouter');
    expect(text).not.toContain('"usage"'); // no include_usage -> no usage key at all, like OpenAI
    expect(
      sseJson(text)
        .map((c) => c.choices[0].delta.content ?? '')
        .join(''),
    ).toBe(expectedText);
  });

  it('streams two parallel tool calls that reassemble to the scripted arguments', async () => {
    const argsA = JSON.stringify({ city: 'Paris', unit: 'celsius' });
    const argsB = JSON.stringify({ timezone: 'Europe/Paris' });
    const calls = [
      { id: 'call_weather1', name: 'get_weather', arguments: argsA },
      { name: 'get_time', arguments: argsB },
    ];
    fake.script({ toolCalls: calls });

    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'weather and time?' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const acc = new Map<number, { id?: string; name?: string; type?: string; args: string; deltas: number }>();
    let finish: string | null = null;
    let content = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      const choice = c.choices[0];
      if (!choice) continue;
      content += choice.delta.content ?? '';
      finish = choice.finish_reason ?? finish;
      for (const tc of choice.delta.tool_calls ?? []) {
        const slot = acc.get(tc.index) ?? { args: '', deltas: 0 };
        if (tc.id) slot.id = tc.id;
        if (tc.type) slot.type = tc.type;
        if (tc.function?.name) slot.name = tc.function.name;
        if (tc.function?.arguments) {
          slot.args += tc.function.arguments;
          slot.deltas++;
        }
        acc.set(tc.index, slot);
      }
    }
    expect(finish).toBe('tool_calls');
    expect(content).toBe('');
    expect([...acc.keys()]).toEqual([0, 1]);
    expect(acc.get(0)).toMatchObject({ id: 'call_weather1', type: 'function', name: 'get_weather', args: argsA });
    expect(acc.get(1)).toMatchObject({ type: 'function', name: 'get_time', args: argsB });
    expect(acc.get(1)!.id).toMatch(/^call_\w+/);
    expect(acc.get(0)!.deltas).toBeGreaterThan(1);
    expect(acc.get(1)!.deltas).toBeGreaterThan(1);
    expect(usage!.completion_tokens).toBe(acc.get(0)!.deltas + acc.get(1)!.deltas);

    // The SDK's own accumulator must agree (it validates index/id bookkeeping).
    fake.script({ toolCalls: calls });
    const final = await client.chat.completions.stream({ model, messages: [{ role: 'user', content: 'again' }] }).finalChatCompletion();
    const toolCalls = final.choices[0].message.tool_calls as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall[];
    expect(toolCalls.map((t) => [t.function.name, t.function.arguments])).toEqual([
      ['get_weather', argsA],
      ['get_time', argsB],
    ]);

    // Non-stream: tool_calls on the message, script queue drained back to the default reply.
    fake.script({ text: 'calling', toolCalls: [calls[0]], usage: { input: 11, output: 7, cached: 3 } });
    const ns = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
    expect(ns.choices[0].finish_reason).toBe('tool_calls');
    expect(ns.choices[0].message.content).toBe('calling');
    expect(ns.choices[0].message.tool_calls).toEqual([{ id: 'call_weather1', type: 'function', function: { name: 'get_weather', arguments: argsA } }]);
    expect(ns.usage).toMatchObject({
      prompt_tokens: 11,
      completion_tokens: 7,
      total_tokens: 18,
      prompt_tokens_details: { cached_tokens: 3 },
    });
    const after = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
    expect(after.choices[0].message.content).toBe(expectedText);
  });

  it('responses.stream(): full event sequence, SDK-accumulated text and final usage', async () => {
    const input = 'Say hi to the gateway';
    const stream = client.responses.stream({ model, input });
    const events: { type: string; seq: number }[] = [];
    for await (const ev of stream) events.push({ type: ev.type, seq: ev.sequence_number });
    const final = await stream.finalResponse();

    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(5).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i));
    expect(final.id).toMatch(/^resp_/);
    expect(final.status).toBe('completed');
    expect(final.model).toBe(model);
    // The message itself (`output_text` is an SDK convenience that not every SDK version adds to a streamed response).
    expect(final.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: expectedText }] });
    expect(final.output[0].id).toMatch(/^msg_/);
    expect(final.usage).toMatchObject({
      input_tokens: tokens(input),
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 5,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: tokens(input) + 5,
    });
  });

  it('responses on the wire: every frame has a matching `event:` line', async () => {
    const res = await fetch(`${fake.baseUrl}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, input: [{ role: 'user', content: 'hi' }], stream: true }),
    });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const events = parseSse(await res.text());
    expect(events.length).toBeGreaterThan(8);
    for (const e of events) {
      const data = JSON.parse(e.data);
      expect(e.event).toBe(data.type);
      expect(typeof data.sequence_number).toBe('number');
    }
    const deltas = events.map((e) => JSON.parse(e.data)).filter((d) => d.type === 'response.output_text.delta');
    expect(deltas.every((d) => typeof d.item_id === 'string' && d.output_index === 0 && d.content_index === 0)).toBe(true);
    expect(deltas.map((d) => d.delta).join('')).toBe(expectedText);
  });

  it('responses with function calls: stream deltas and non-stream items', async () => {
    const calls = [
      { id: 'call_lookup', name: 'lookup', arguments: '{"q":"gateway","limit":3}' },
      { name: 'now', arguments: '{"tz":"UTC"}' },
    ];
    fake.script({ toolCalls: calls, usage: { input: 40, output: 9 } });
    const stream = await client.responses.create({ model, input: 'use tools', stream: true });
    const args = new Map<number, string>();
    const types: string[] = [];
    let completed: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.output_item.added' && ev.item.type === 'function_call') {
        expect(ev.item.arguments).toBe('');
      }
      if (ev.type === 'response.function_call_arguments.delta') {
        args.set(ev.output_index, (args.get(ev.output_index) ?? '') + ev.delta);
      }
      if (ev.type === 'response.completed') completed = ev.response;
    }
    expect(types.filter((t) => t === 'response.function_call_arguments.delta').length).toBeGreaterThan(2);
    expect(types.filter((t) => t === 'response.function_call_arguments.done')).toHaveLength(2);
    expect(types).not.toContain('response.output_text.delta');
    expect([...args.values()]).toEqual([calls[0].arguments, calls[1].arguments]);
    const out = completed!.output as OpenAI.Responses.ResponseFunctionToolCall[];
    expect(out.map((o) => [o.type, o.name, o.arguments])).toEqual([
      ['function_call', 'lookup', calls[0].arguments],
      ['function_call', 'now', calls[1].arguments],
    ]);
    expect(out[0].call_id).toBe('call_lookup');
    expect(out[1].call_id).toMatch(/^call_/);
    expect(out[0].id).toMatch(/^fc_/);
    expect(completed!.usage).toMatchObject({ input_tokens: 40, output_tokens: 9, total_tokens: 49 });

    const input = [{ role: 'user' as const, content: 'plain' }];
    const resp = await client.responses.create({ model, input });
    expect(resp.object).toBe('response');
    expect(resp.output_text).toBe(expectedText);
    expect(resp.output[0]).toMatchObject({
      type: 'message',
      content: [{ type: 'output_text', text: expectedText, annotations: [] }],
    });
    expect(resp.usage!.input_tokens).toBe(tokens(input));
  });

  it('failNext: status, flavor body and Retry-After, then recovery; SDK retries honour it', async () => {
    fake.failNext(1, 429, { retryAfter: '7' });
    const err = await rejection(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }));
    expect(err.status).toBe(429);
    expect(err.headers?.get('retry-after')).toBe('7');
    if (flavor === 'openrouter') expect(err.error).toMatchObject({ code: 429 });
    else expect(err.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' });

    const ok = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
    expect(ok.choices[0].message.content).toBe(expectedText);

    fake.failNext(1, 503);
    const err503 = await rejection(client.responses.create({ model, input: 'x' }));
    expect(err503.status).toBe(503);
    expect(err503.headers?.get('retry-after')).toBeNull();
    if (flavor === 'openrouter') {
      expect(err503.error).toMatchObject({ message: 'fake upstream failure', code: 503 });
    } else {
      expect(err503.error).toEqual({ message: 'fake upstream failure', type: 'server_error', param: null, code: null });
    }

    // Custom body, and a scripted failure through script().
    fake.failNext(1, 500, { body: { error: { message: 'custom boom' } } });
    expect((await rejection(client.chat.completions.create({ model, messages: [] }))).error).toEqual({
      message: 'custom boom',
    });
    fake.script({ status: 502, retryAfter: '3', errorBody: { error: { message: 'scripted' } } });
    const scripted = await rejection(client.chat.completions.create({ model, messages: [] }));
    expect([scripted.status, scripted.headers?.get('retry-after'), scripted.message]).toEqual([502, '3', '502 scripted']);

    // With retries on, two failures are absorbed and the third attempt succeeds.
    fake.reset();
    fake.failNext(2, 500, { retryAfter: '0.01' });
    const retrying = sdk(fake, { maxRetries: 2 });
    const res = await retrying.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
    expect(res.choices[0].message.content).toBe(expectedText);
    expect(fake.requestsTo('/chat/completions')).toHaveLength(3);
  });

  it('hangNext + AbortController: request hangs, abort leaves openConnections() at 0', async () => {
    fake.hangNext(1);
    const ac = new AbortController();
    let settled = false;
    const p = client.chat.completions
      .create({ model, messages: [{ role: 'user', content: 'hang' }], stream: true }, { signal: ac.signal })
      .finally(() => (settled = true));
    await waitFor(() => fake.openConnections() === 1, 'hanging request to arrive');
    await new Promise((r) => setTimeout(r, 100));
    expect(settled).toBe(false);
    expect(fake.openConnections()).toBe(1);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(APIUserAbortError);
    await fake.whenIdle(1000);
    expect(fake.openConnections()).toBe(0);

    // The hang was consumed: the next call answers normally.
    const ok = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
    expect(ok.choices[0].message.content).toBe(expectedText);
  });

  it('dropMidStreamNext: the client errors after k chunks, the next stream is whole', async () => {
    fake.dropMidStreamNext(1, 3);
    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], stream: true });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '');
      })(),
    ).rejects.toThrow();
    expect(seen).toHaveLength(3); // role chunk + 2 content chunks
    expect(seen.join('')).not.toBe(expectedText);
    await fake.whenIdle(1000);
    expect(fake.openConnections()).toBe(0);

    const whole = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], stream: true });
    let text = '';
    for await (const c of whole) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe(expectedText);

    // Responses streams are cut the same way; the SDK helper must reject rather than resolve.
    fake.dropMidStreamNext(1, 4);
    await expect(client.responses.stream({ model, input: 'x' }).finalResponse()).rejects.toThrow();
  });

  it('lists models via the SDK', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(DEFAULT_MODELS[flavor]);
    expect(page.data.every((m) => m.object === 'model' && typeof m.created === 'number')).toBe(true);
    const one = await client.models.retrieve(DEFAULT_MODELS[flavor][1]);
    expect(one.id).toBe(DEFAULT_MODELS[flavor][1]);
  });

  it('unknown model: 404 in the flavor shape', async () => {
    const err = await rejection(client.chat.completions.create({ model: 'no-such-model', messages: [] }));
    expect(err.status).toBe(404);
    const expected = {
      openai: {
        message: 'The model `no-such-model` does not exist or you do not have access to it.',
        type: 'invalid_request_error',
        param: null,
        code: 'model_not_found',
      },
      openrouter: { message: 'No endpoints found for no-such-model.', code: 404 },
      ollama: {
        message: 'model "no-such-model" not found, try pulling it first',
        type: 'api_error',
        param: null,
        code: null,
      },
    }[flavor];
    expect(err.error).toMatchObject(expected);
    if (flavor !== 'openrouter') expect(err.error).toEqual(expected);
    expect(fake.received).toHaveLength(1);
  });

  it('wrong API key: 401 in the flavor shape', async () => {
    const bad = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'sk-wrong', maxRetries: 0 });
    const err = await rejection(bad.chat.completions.create({ model, messages: [] }));
    expect(err.status).toBe(401);
    if (flavor === 'openrouter') {
      expect(err.error).toEqual({ message: 'No auth credentials found', code: 401 });
    } else {
      expect(err.error).toEqual({
        message: 'Incorrect API key provided',
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
      });
    }
    expect(fake.received[0].headers.authorization).toBe('Bearer sk-wrong');
  });

  it('malformed JSON -> 400, unknown path -> 404, both recorded', async () => {
    const bad = await fetch(`${fake.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: '{"model": "x", ',
    });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as any;
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/parse the JSON body/);

    const missing = await fetch(`${fake.baseUrl}/nope`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).error.message).toContain('/nope');

    expect(fake.received.map((r) => [r.method, r.path])).toEqual([
      ['POST', `${ROOT_PATH[flavor]}/chat/completions`],
      ['GET', `${ROOT_PATH[flavor]}/nope`],
    ]);
    expect(fake.received[0].body).toBeUndefined();
    expect(fake.received[0].rawBody).toBe('{"model": "x", ');
  });
});

describe('FakeProvider flavor-independent behaviour', () => {
  const started: FakeProvider[] = [];
  const start = async (opts: Parameters<typeof FakeProvider.start>[0]) => {
    const f = await FakeProvider.start(opts);
    started.push(f);
    return f;
  };
  afterEach(async () => {
    await Promise.all(started.splice(0).map((f) => f.close()));
  });

  it('ollama: /api/tags lists models, no key needed, :latest alias resolves', async () => {
    const fake = await start({ flavor: 'ollama' });
    const res = await fetch(`${fake.origin}/api/tags`);
    expect(res.status).toBe(200);
    const tags = (await res.json()) as any;
    expect(tags.models.map((m: any) => m.name)).toEqual(['gpt-oss:20b', 'llama3.2']);
    expect(tags.models[0]).toMatchObject({ name: 'gpt-oss:20b', model: 'gpt-oss:20b' });
    expect(typeof tags.models[0].modified_at).toBe('string');
    expect(typeof tags.models[0].size).toBe('number');
    expect(tags.models[0].digest).toMatch(/^[0-9a-f]{64}$/);
    expect(tags.models[0].details).toMatchObject({ format: 'gguf' });

    const client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'ollama', maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'llama3.2:latest', messages: [{ role: 'user', content: 'x' }] });
    expect(r.choices[0].message.content).toBe('Hello from fake-ollama (llama3.2:latest)');
  });

  it('embeddings: SDK base64 default and float format agree with 8 deterministic floats', async () => {
    const fake = await start({ flavor: 'openai' });
    const client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'k', maxRetries: 0 });
    const res = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] });
    expect(fake.received[0].body.encoding_format).toBe('base64');
    expect(res.object).toBe('list');
    expect(res.model).toBe('text-embedding-3-small');
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    expect(res.data[0].embedding).toHaveLength(8);
    expect(res.data[0].embedding).toEqual(fakeEmbedding('alpha'));
    expect(res.data[1].embedding).not.toEqual(res.data[0].embedding);
    expect(res.data[0].embedding.every((x) => x >= -1 && x < 1)).toBe(true);
    expect(res.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 }); // ceil(5/4) + ceil(4/4)

    const raw = await fetch(`${fake.baseUrl}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-embedding-3-small', input: 'alpha', encoding_format: 'float' }),
    });
    const json = (await raw.json()) as any;
    expect(json.data).toHaveLength(1);
    expect(json.data[0].object).toBe('embedding');
    expect(json.data[0].embedding).toEqual(res.data[0].embedding);
  });

  it('runtime knobs: streamChunks, strictModels, models, apiKey', async () => {
    const fake = await start({ flavor: 'openai', streamChunks: 2 });
    const client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'whatever', maxRetries: 0 });
    const count = async (m: string) => {
      let n = 0;
      const s = await client.chat.completions.create({ model: m, messages: [{ role: 'user', content: 'x' }], stream: true });
      for await (const c of s) if (c.choices[0]?.delta.content) n++;
      return n;
    };
    expect(await count('gpt-4o')).toBe(2);
    fake.options.streamChunks = 9;
    expect(await count('gpt-4o')).toBe(9);

    expect((await rejection(count('custom-model'))).status).toBe(404);
    fake.options.strictModels = false;
    expect(await count('custom-model')).toBe(9);
    fake.options.strictModels = true;
    fake.options.models.push('custom-model');
    expect(await count('custom-model')).toBe(9);

    fake.options.apiKey = 'sk-new';
    expect((await rejection(count('gpt-4o'))).status).toBe(401);
  });

  it('replyText: the default reply, streamed in streamChunks deltas (chat and Responses); a script still wins', async () => {
    const text = 'abcd'.repeat(200);
    const fake = await start({ flavor: 'openai', streamChunks: 200, replyText: text });
    const client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'k', maxRetries: 0 });
    const chat = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], stream: true });
    const pieces: string[] = [];
    for await (const c of chat) if (c.choices[0]?.delta.content) pieces.push(c.choices[0].delta.content);
    expect(pieces).toHaveLength(200);
    expect(pieces.join('')).toBe(text);

    const resp = await client.responses.create({ model: 'gpt-4o', input: 'x', stream: true });
    const deltas: string[] = [];
    let completed: unknown;
    for await (const e of resp) {
      if (e.type === 'response.output_text.delta') deltas.push(e.delta);
      if (e.type === 'response.completed') completed = e.response.output;
    }
    expect(deltas).toHaveLength(200);
    expect(deltas.join('')).toBe(text);
    expect(completed).toMatchObject([{ type: 'message', content: [{ type: 'output_text', text }] }]);

    fake.script({ text: 'scripted' });
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    expect(r.choices[0].message.content).toBe('scripted');
  });

  it('latencyMs delays the head; chunkDelayMs spaces the chunks', async () => {
    const fake = await start({ flavor: 'openai', latencyMs: 150 });
    const client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'k', maxRetries: 0 });
    let t0 = Date.now();
    await client.chat.completions.create({ model: 'gpt-4o', messages: [] });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);

    fake.options.latencyMs = 0;
    fake.options.chunkDelayMs = 40;
    t0 = Date.now();
    const s = await client.chat.completions.create({ model: 'gpt-4o', messages: [], stream: true });
    const arrivals: number[] = [];
    for await (const _ of s) arrivals.push(Date.now() - t0);
    // 8 frames (role, 5 content, finish, [DONE]) -> 7 gaps of 40ms before the last parsed chunk.
    expect(arrivals).toHaveLength(7);
    expect(arrivals[arrivals.length - 1]).toBeGreaterThanOrEqual(6 * 40 - 10);
  });

  it('close() ends in-flight streams and hangs promptly and is idempotent', async () => {
    const fake = await start({ flavor: 'openrouter', chunkDelayMs: 10_000 });
    const client = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'k', maxRetries: 0 });
    const s = await client.chat.completions.create({
      model: 'openai/gpt-4o-mini',
      messages: [],
      stream: true,
    });
    // Settle-capturing wrappers so neither rejection is ever briefly unhandled.
    const consumed = (async () => {
      for await (const _ of s) {
        /* drain */
      }
    })().then(
      () => 'resolved',
      (e: unknown) => e,
    );
    fake.hangNext(1);
    const hung = client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [] }).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await waitFor(() => fake.openConnections() === 2, 'both requests in flight');
    const t0 = Date.now();
    await Promise.all([fake.close(), fake.close()]);
    // The hung request would hold close() forever: any bound shows it does not; a wide one cannot flake.
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(fake.openConnections()).toBe(0);
    // undici's TypeError comes from Node's realm, not Jest's, so check by shape.
    const streamErr = (await consumed) as { message?: string };
    expect(streamErr).not.toBe('resolved');
    expect(String(streamErr.message)).toMatch(/terminated|closed|socket/i);
    expect(await hung).toBeInstanceOf(APIError);
  });
});
