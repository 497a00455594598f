import { randomUUID } from 'node:crypto';
import { LimitsService } from '@gw/limits';
import type { Principal } from '@gw/tenancy';
import {
  DEEP,
  FakeProvider,
  HOSTILE_VALUES,
  RawUpstream,
  Stack,
  deepArrayText,
  deepObjectText,
  eventually,
  rawUpstream,
  seedTenant,
  startStack,
  stringifyHostile,
} from '@gw/testing';

jest.setTimeout(60_000);

/**
 * "Never 500": malformed requests and odd upstream answers end in an OpenAI-shaped 4xx (or a 502 that
 * blames the upstream), the gateway keeps serving, and streams are always metered. Every case is a row of
 * a table, so adding one is one line.
 */

const CIRCUIT_COOLDOWN_MS = 200;

type Json = Record<string, unknown>;

const chunk = (delta: Json, finish: string | null = null) =>
  JSON.stringify({ id: 'chatcmpl-r', object: 'chat.completion.chunk', created: 1, model: 'raw', choices: [{ index: 0, delta, finish_reason: finish }] });
const ROLE = chunk({ role: 'assistant', content: '' });
const DELTAS = [chunk({ content: 'Hel' }), chunk({ content: 'lo' }), chunk({ content: '!' })];
const STOP = chunk({}, 'stop');

describe('robustness: malformed requests and odd upstreams never 500', () => {
  let stack: Stack;
  let openai: FakeProvider;
  let ollama: FakeProvider;
  let raw: RawUpstream;
  let secret: string;
  const ids: Record<string, string> = {};

  async function route(modelPattern: string, targets: object[], settings: object = {}) {
    const r = await stack.api('POST', '/admin/routes', { modelPattern, targets, settings });
    if (r.status !== 201) throw new Error(`route ${modelPattern}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  async function provider(name: string, kind: string, baseUrl: string, settings: object = {}) {
    const r = await stack.api('POST', '/admin/providers', { name, kind, baseUrl, settings });
    if (r.status !== 201) throw new Error(`provider ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    ids[name] = r.body.id;
    return r.body.id as string;
  }

  function post(path: string, body: unknown): Promise<Response> {
    return fetch(`${stack.baseURL}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  async function call(path: string, body: unknown): Promise<{ status: number; body: any; headers: Headers; text: string }> {
    const res = await post(path, body);
    const text = await res.text();
    let parsed: any;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, headers: res.headers, text };
  }

  function expectOpenAIError(body: any): void {
    expect(Object.keys(body ?? {})).toEqual(['error']);
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(typeof body.error.message).toBe('string');
    expect(typeof body.error.type).toBe('string');
    expect(body.error.param === null || typeof body.error.param === 'string').toBe(true);
    expect(body.error.code === null || typeof body.error.code === 'string').toBe(true);
  }

  /** SSE data events of a response (`[DONE]` as the string). */
  function events(text: string): any[] {
    const out: any[] = [];
    for (const ev of text.split('\n\n')) {
      const data = ev
        .split('\n')
        .find((l) => l.startsWith('data: '))
        ?.slice(6);
      if (data === undefined) continue;
      out.push(data === '[DONE]' ? data : JSON.parse(data));
    }
    return out;
  }

  async function ledgerRow(requestId: string | null): Promise<any> {
    expect(requestId).toBeTruthy();
    return eventually(
      async () => {
        await stack.flushLedger().catch(() => undefined);
        return (await stack.sql('SELECT * FROM usage_records WHERE request_id = $1', [requestId]))[0];
      },
      5000,
      25,
    );
  }

  beforeAll(async () => {
    openai = await FakeProvider.start({ flavor: 'openai', strictModels: false });
    ollama = await FakeProvider.start({ flavor: 'ollama', strictModels: false });
    raw = await rawUpstream();
    stack = await startStack({ circuitFailureThreshold: 1, circuitCooldownMs: CIRCUIT_COOLDOWN_MS });
    const t = await seedTenant(stack, {
      provider: { kind: 'openai', name: 'openai', baseUrl: openai.baseUrl },
      patterns: ['gpt-4o-mini', 'text-embedding-3-small'],
    });
    secret = t.secret;
    ids.openai = t.providerId;
    const oll = await provider('ollama', 'ollama', ollama.baseUrl);
    const rawNative = await provider('raw', 'openai', raw.baseUrl);
    const rawChat = await provider('raw-chat', 'openai', raw.baseUrl, { responsesApi: false });
    await route('gpt-oss:20b', [{ providerId: oll }]);
    await route('m-status', [{ providerId: t.providerId, model: 'm-status' }], { maxAttempts: 1 });
    await route('circuit', [{ providerId: oll, model: 'm-circuit' }], { maxAttempts: 1 });
    await route('raw', [{ providerId: rawNative, model: 'raw' }], { maxAttempts: 1 });
    await route('raw-translated', [{ providerId: rawChat, model: 'raw' }], { maxAttempts: 1 });
    // A chat-only target first, a native one as the fallback (finding 21).
    await route(
      'mixed',
      [
        { providerId: rawChat, model: 'raw', priority: 0 },
        { providerId: t.providerId, model: 'gpt-4o-mini', priority: 1 },
      ],
      { maxAttempts: 1 },
    );
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([openai?.close(), ollama?.close(), raw?.close()]);
  });

  beforeEach(() => {
    openai.reset();
    ollama.reset();
    raw.reset();
  });

  const user = [{ role: 'user', content: 'hi' }];

  // ───────────────────────────── malformed requests ─────────────────────────────

  const chatCases: [string, unknown, number, string | null][] = [
    ['a JSON array', '[1,2]', 400, null],
    ['a JSON string', '"x"', 400, null],
    ['no model', { messages: user }, 400, 'model'],
    ['a numeric model', { model: 123, messages: user }, 400, 'model'],
    ['a 300-character model', { model: 'm'.repeat(300), messages: user }, 400, 'model'],
    ['a model with a newline', { model: 'gpt-4o-mini\n', messages: user }, 400, 'model'],
    ['a model with quotes and spaces', { model: 'a "b" c', messages: user }, 400, 'model'],
    ['messages a string', { model: 'gpt-4o-mini', messages: 'hi' }, 400, 'messages'],
    ['messages empty', { model: 'gpt-4o-mini', messages: [] }, 400, 'messages'],
    ['messages [null]', { model: 'gpt-4o-mini', messages: [null] }, 400, 'messages[0]'],
    ['messages [msg, 1]', { model: 'gpt-4o-mini', messages: [user[0], 1] }, 400, 'messages[1]'],
    ['max_tokens 1e300', { model: 'gpt-4o-mini', messages: user, max_tokens: 1e300 }, 400, 'max_tokens'],
    ['max_tokens -1', { model: 'gpt-4o-mini', messages: user, max_tokens: -1 }, 400, 'max_tokens'],
    ['max_tokens 1.5', { model: 'gpt-4o-mini', messages: user, max_tokens: 1.5 }, 400, 'max_tokens'],
    ['max_tokens above 10M', { model: 'gpt-4o-mini', messages: user, max_tokens: 10_000_001 }, 400, 'max_tokens'],
    ['max_completion_tokens a string', { model: 'gpt-4o-mini', messages: user, max_completion_tokens: '100' }, 400, 'max_completion_tokens'],
    ['stream a string', { model: 'gpt-4o-mini', messages: user, stream: 'yes' }, 400, 'stream'],
    ['stream_options a string', { model: 'gpt-4o-mini', messages: user, stream: true, stream_options: 'x' }, 400, 'stream_options'],
  ];
  it.each(chatCases)('/v1/chat/completions with %s', async (_label, body, status, param) => {
    const r = await call('/chat/completions', body);
    expect(r.status).toBe(status);
    expectOpenAIError(r.body);
    if (param) expect(r.body.error.param).toBe(param);
    expect(openai.received).toHaveLength(0);
  });

  const responsesCases: [string, Json, string | null][] = [
    ['input missing', {}, 'input'],
    ['input a number', { input: 42 }, 'input'],
    ['input [null]', { input: [null] }, 'input[0]'],
    ['input [msg, "str"]', { input: [user[0], 'str'] }, 'input[1]'],
    ['a reasoning item with summary "x"', { input: [{ type: 'reasoning', summary: 'x' }] }, 'input[0].summary'],
    ['content 123', { input: [{ role: 'user', content: 123 }] }, 'input[0].content'],
    ['content [null]', { input: [{ role: 'user', content: [null] }] }, 'input[0].content[0]'],
    ['a message without a role', { input: [{ content: 'hi' }] }, 'input[0].role'],
    ['a function_call without call_id', { input: [{ type: 'function_call', name: 'f', arguments: '{}' }] }, 'input[0].call_id'],
    ['item type a number', { input: [{ type: 5 }] }, 'input[0].type'],
    ['tools [null]', { input: 'hi', tools: [null] }, 'tools[0]'],
    ['tools a string', { input: 'hi', tools: 'x' }, 'tools'],
    ['a tool without a type', { input: 'hi', tools: [{ name: 'f' }] }, 'tools[0].type'],
    ['a function tool without a name', { input: 'hi', tools: [{ type: 'function' }] }, 'tools[0].name'],
    ['a namespace with a null member', { input: 'hi', tools: [{ type: 'namespace', name: 'ns', tools: [null] }] }, 'tools[0].tools[0]'],
    ['instructions an object', { input: 'hi', instructions: {} }, 'instructions'],
    ['previous_response_id a number', { input: 'hi', previous_response_id: 5 }, 'previous_response_id'],
    ['max_output_tokens 1e300', { input: 'hi', max_output_tokens: 1e300 }, 'max_output_tokens'],
    ['max_output_tokens 0', { input: 'hi', max_output_tokens: 0 }, 'max_output_tokens'],
  ];
  describe.each([
    ['chat-only provider (translated)', 'gpt-oss:20b', () => ollama],
    ['native provider (pass-through)', 'gpt-4o-mini', () => openai],
  ])('/v1/responses on a %s', (_label, model, fake) => {
    it.each(responsesCases)('%s → 400', async (_case, extra, param) => {
      const r = await call('/responses', { model, ...extra });
      expect(r.status).toBe(400);
      expectOpenAIError(r.body);
      expect(r.body.error.type).toBe('invalid_request_error');
      if (param) expect(r.body.error.param).toBe(param);
      expect(fake().received).toHaveLength(0);
    });

    it('still serves a normal request', async () => {
      const r = await call('/responses', { model, input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }], max_output_tokens: 10_000_000 });
      expect(r.status).toBe(200);
      expect(r.body.status).toBe('completed');
    });
  });

  const embeddingCases: [string, unknown, string | null][] = [
    ['input missing', { model: 'text-embedding-3-small' }, 'input'],
    ['input []', { model: 'text-embedding-3-small', input: [] }, 'input'],
    ['model an object', { model: {}, input: 'x' }, 'model'],
    ['a JSON array', '[1,2]', null],
  ];
  it.each(embeddingCases)('/v1/embeddings with %s → 400', async (_label, body, param) => {
    const r = await call('/embeddings', body);
    expect(r.status).toBe(400);
    expectOpenAIError(r.body);
    if (param) expect(r.body.error.param).toBe(param);
  });

  it('a refused oversized model name is recorded bounded (ledger row), not whole', async () => {
    const r = await call('/chat/completions', { model: 'x'.repeat(100_000), messages: user });
    expect(r.status).toBe(400);
    const row = await ledgerRow(r.headers.get('x-request-id'));
    expect(row).toMatchObject({ status: 400 });
    expect(row.requested_model.length).toBeLessThanOrEqual(256);
  });

  it('a refused model name that is not a plausible model name is recorded as a fixed marker', async () => {
    const r = await call('/chat/completions', { model: '=HYPERLINK("http://evil.example","x")', messages: user });
    expect(r.status).toBe(400);
    const row = await ledgerRow(r.headers.get('x-request-id'));
    expect(row).toMatchObject({ status: 400, requested_model: '(invalid)' });
  });

  it('the usage CSV neutralises cells a spreadsheet would run, and quotes CR like LF', async () => {
    // A formula-shaped value can still reach the ledger through a valid-looking model name (`-`, `@`, `+`
    // are legal model characters), so the export itself must neutralise it.
    for (const model of ['-cmd', '@SUM', '+1']) {
      const r = await call('/chat/completions', { model, messages: user });
      expect(r.status).toBe(404);
      await ledgerRow(r.headers.get('x-request-id'));
    }
    const csv = await stack.api('GET', '/admin/usage?groupBy=model&format=csv');
    expect(csv.status).toBe(200);
    const cells = String(csv.body)
      .split('\n')
      .map((l) => l.split(',')[0]);
    for (const m of ['-cmd', '@SUM', '+1']) {
      expect(cells).toContain(`'${m}`);
      expect(cells).not.toContain(m);
    }
    expect(cells.some((c) => /^[=+\-@\t\r]/.test(c))).toBe(false);
  });

  describe.each([
    ['a route pattern with NUL', 'POST', '/admin/routes', { modelPattern: 'a\u0000b', targets: [] }],
    ['a usage filter with NUL', 'GET', '/admin/usage?model=%00', undefined],
    ['a usage filter with control characters', 'GET', '/admin/usage?model=%01%1b%7f', undefined],
    ['a tenant name with NUL', 'POST', '/admin/tenants', { name: 'x\u0000y' }],
  ] as [string, string, string, unknown][])('admin: %s is a 4xx, never a 500', (_label, method, path, body) => {
    it('answers OpenAI-shaped', async () => {
      const r = await stack.api(method, path, body);
      expect(r.status).toBeGreaterThanOrEqual(200);
      expect(r.status).toBeLessThan(500);
      if (r.status >= 400) expectOpenAIError(r.body);
    });
  });

  // ───────────────────────────── hostile values (test/support/hostile.ts; test/fuzz.e2e-spec.ts tries them everywhere) ─────────────────────────────

  function expectNot500(r: { status: number; body: any }): void {
    expect(r.status).toBeLessThan(500);
    if (r.status >= 400) expectOpenAIError(r.body);
  }

  describe.each(HOSTILE_VALUES.map(([label, value]) => [label, value] as [string, unknown]))('the hostile value %s', (_label, value) => {
    it.each([
      ['/chat/completions', 'messages[0].content', (v: unknown) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: v }] })],
      ['/chat/completions', 'max_tokens', (v: unknown) => ({ model: 'gpt-4o-mini', messages: user, max_tokens: v })],
      [
        '/responses',
        'tools[0].parameters (translated)',
        (v: unknown) => ({ model: 'gpt-oss:20b', input: 'hi', tools: [{ type: 'function', name: 'f', parameters: v }] }),
      ],
      [
        '/responses',
        'input[0].content[0].text (translated)',
        (v: unknown) => ({ model: 'gpt-oss:20b', input: [{ role: 'user', content: [{ type: 'input_text', text: v }] }] }),
      ],
      ['/embeddings', 'input', (v: unknown) => ({ model: 'text-embedding-3-small', input: v })],
    ] as [string, string, (v: unknown) => unknown][])('in %s %s is never a 500', async (path, _field, body) => {
      expectNot500(await call(path, stringifyHostile(body(value))));
    });

    it.each([
      ['POST', '/admin/tenants', 'name', (v: unknown) => ({ name: v })],
      ['POST', '/admin/routes', 'modelPattern', (v: unknown) => ({ modelPattern: v, targets: [] })],
      ['POST', '/admin/prices', 'inputPerM', (v: unknown) => ({ modelPattern: 'hostile-*', inputPerM: v, outputPerM: 1 })],
      ['PATCH', '/admin/providers/:raw', 'settings.responsesApi', (v: unknown) => ({ settings: { responsesApi: v } })],
      // A query carries bytes: a string's UTF-8 (a lone surrogate as U+FFFD), anything else as its text.
      [
        'GET',
        '/admin/usage?model=',
        'model',
        (v: unknown) => [...Buffer.from(typeof v === 'string' ? v.slice(0, 2000) : String(v))].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''),
      ],
    ] as [string, string, string, (v: unknown) => unknown][])('admin %s %s with %s is never a 500', async (method, path, _field, body) => {
      const url = path.replace(':raw', ids.raw);
      const r =
        method === 'GET'
          ? await stack.api(method, url + (body(value) as string))
          : await fetch(`${stack.adminUrl}${url}`, {
              method,
              headers: { authorization: `Bearer ${stack.config.adminToken}`, 'content-type': 'application/json' },
              body: stringifyHostile(body(value)),
            }).then(async (res) => ({ status: res.status, body: await res.json().catch(() => undefined) }));
      expectNot500(r);
    });
  });

  it.each([
    ['an array', deepArrayText()],
    ['an object', deepObjectText()],
  ])(`a body nested ${DEEP} levels deep (%s) is a 400 invalid_json on both apps`, async (_label, text) => {
    const gw = await call('/responses', text);
    expect(gw.status).toBe(400);
    expect(gw.body.error.code).toBe('invalid_json');
    const tools = `{"model":"gpt-oss:20b","input":"hi","tools":[{"type":"function","name":"f","parameters":${text}}]}`;
    expect((await call('/responses', tools)).body.error.code).toBe('invalid_json');
    const adm = await fetch(`${stack.adminUrl}/admin/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.config.adminToken}`, 'content-type': 'application/json' },
      body: text,
    });
    expect(adm.status).toBe(400);
    expect(((await adm.json()) as any).error.code).toBe('invalid_json');
  });

  it('a body nested 100 levels deep (under the limit) is translated and forwarded, not refused', async () => {
    const schema = `{"type":"object","properties":{"a":${'{"type":"array","items":'.repeat(98)}{"type":"string"}${'}'.repeat(98)}}}`;
    const r = await call('/responses', `{"model":"gpt-oss:20b","input":"hi","tools":[{"type":"function","name":"f","parameters":${schema}}]}`);
    expect(r.status).toBe(200);
  });

  it.each([
    ['PATCH', 'a null name', { name: null }, 'name'],
    ['PATCH', 'a null responsesApi', { settings: { responsesApi: null } }, 'settings.responsesApi'],
    ['PATCH', 'settings an array', { settings: [] }, 'settings'],
  ])('admin: %s with %s on a provider is a 400 naming the field', async (method, _label, body, param) => {
    const r = await stack.api(method, `/admin/providers/${ids.raw}`, body);
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe(param);
  });

  it.each([
    ['a null modelPattern', { modelPattern: null, targets: [] }, 'modelPattern'],
    ['targets [[]]', { modelPattern: 'x', targets: [[]] }, 'targets'],
    ['a null target weight', { modelPattern: 'x', targets: [{ providerId: '00000000-0000-4000-8000-000000000000', weight: null }] }, 'targets[0].weight'],
  ])('admin: a route with %s is a 400 naming the field', async (_label, body, param) => {
    const r = await stack.api('POST', '/admin/routes', body);
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe(param);
  });

  it('admin: an empty PATCH changes nothing and answers the object', async () => {
    const r = await stack.api('PATCH', `/admin/providers/${ids.raw}`, {});
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(ids.raw);
  });

  // ───────────────────────────── odd upstream answers ─────────────────────────────

  const oddBodies: [string, unknown][] = [
    ['null', null],
    ['[]', []],
    ['"x"', 'x'],
  ];
  describe.each(oddBodies)('an upstream answering 200 with %s', (_label, body) => {
    it.each([
      ['/chat/completions', { model: 'gpt-4o-mini', messages: user }, () => openai],
      ['/responses', { model: 'gpt-4o-mini', input: 'hi' }, () => openai],
      ['/responses', { model: 'gpt-oss:20b', input: 'hi' }, () => ollama],
      ['/embeddings', { model: 'text-embedding-3-small', input: 'hi' }, () => openai],
    ])('%s %j → 502 bad_upstream_response', async (path, req, fake) => {
      fake().failNext(1, 200, { body });
      const r = await call(path, req);
      expect(r.status).toBe(502);
      expectOpenAIError(r.body);
      expect(r.body.error.code).toBe('bad_upstream_response');
    });
  });

  it.each([400, 500])('an upstream %d error whose message is a number keeps its status and says so', async (status) => {
    openai.failNext(1, status, { body: { error: { message: 123, code: 7 } } });
    const r = await call('/chat/completions', { model: 'm-status', messages: user });
    expect(r.status).toBe(status);
    expectOpenAIError(r.body);
    expect(r.body.error.message).toBe('openai: 123');
    expect(r.body.error.message).not.toContain('could not be reached');
    expect(openai.requestsTo('/chat/completions')).toHaveLength(1);
  });

  it.each([
    [401, '/chat/completions', { model: 'gpt-4o-mini', messages: user }],
    [403, '/responses', { model: 'gpt-4o-mini', input: 'hi' }],
  ])('an upstream %d (the gateway credential) is a 502 upstream_auth_error, never a 401 to the tenant (%s)', async (status, path, body) => {
    openai.failNext(1, status, { body: { error: { message: 'Incorrect API key provided: sk-abc*****wxyz. org-AbCdEf123456', code: 'invalid_api_key' } } });
    const r = await call(path, body);
    expect(r.status).toBe(502);
    expectOpenAIError(r.body);
    expect(r.body.error.code).toBe('upstream_auth_error');
    expect(r.body.error.message).toContain(`openai: the provider rejected the gateway's credential (HTTP ${status})`);
    expect(r.body.error.message).not.toMatch(/AbCdEf123456|sk-abc/);
  });

  it('a translated non-stream answer of the wrong shape is translated defensively, not a 500', async () => {
    raw.json(200, JSON.stringify({ id: 'x', choices: { a: 1 }, usage: 'lots' }));
    const r = await call('/responses', { model: 'raw-translated', input: 'hi' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ object: 'response', output: [] });
  });

  // ───────────────────────────── streams are always metered ─────────────────────────────

  it('a chat stream that ends with [DONE] but no usage is metered on an estimate', async () => {
    raw.sse([ROLE, ...DELTAS, STOP, '[DONE]']);
    const r = await call('/chat/completions', { model: 'raw', messages: user, stream: true });
    expect(r.status).toBe(200);
    expect(events(r.text).at(-1)).toBe('[DONE]');
    const row = await ledgerRow(r.headers.get('x-request-id'));
    expect(row).toMatchObject({ status: 200, error_code: null, streamed: true, output_tokens: 3 });
    expect(row.input_tokens).toBeGreaterThan(0);
  });

  it('usage is found whatever the spacing ("usage": {)', async () => {
    const usage =
      '{"id":"chatcmpl-r","object":"chat.completion.chunk","choices":[], "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}';
    raw.sse([ROLE, ...DELTAS, STOP, usage, '[DONE]']);
    const r = await call('/chat/completions', { model: 'raw', messages: user, stream: true });
    expect(r.status).toBe(200);
    // The client did not ask for usage: the usage chunk is metered and dropped.
    expect(r.text).not.toContain('"usage"');
    expect(await ledgerRow(r.headers.get('x-request-id'))).toMatchObject({ status: 200, input_tokens: 11, output_tokens: 7 });
  });

  it('a chat stream with a finish_reason but no [DONE] and no usage ends normally, metered on an estimate', async () => {
    raw.sse([ROLE, ...DELTAS, STOP]);
    const r = await call('/chat/completions', { model: 'raw', messages: user, stream: true });
    expect(events(r.text).some((e) => e.error)).toBe(false);
    expect(await ledgerRow(r.headers.get('x-request-id'))).toMatchObject({ status: 200, output_tokens: 3 });
  });

  it('a chat stream that ends with neither [DONE] nor a finish_reason is a stream_error', async () => {
    raw.sse([ROLE, ...DELTAS]);
    const r = await call('/chat/completions', { model: 'raw', messages: user, stream: true });
    expect(r.status).toBe(200);
    const last = events(r.text).at(-1);
    expect(last.error).toMatchObject({ code: 'stream_error', type: 'server_error' });
    const row = await ledgerRow(r.headers.get('x-request-id'));
    expect(row).toMatchObject({ status: 502, error_code: 'stream_error', output_tokens: 3 });
    expect(row.input_tokens).toBeGreaterThan(0);
  });

  it('a translated Responses stream that ends without a finish is response.failed, never completed', async () => {
    raw.sse([ROLE, ...DELTAS]);
    const r = await call('/responses', { model: 'raw-translated', input: 'hi', stream: true });
    const evs = events(r.text);
    expect(evs.at(-1)).toMatchObject({ type: 'response.failed', response: { status: 'failed', error: { code: 'stream_error' } } });
    expect(evs.some((e) => e.type === 'response.completed')).toBe(false);
    expect(await ledgerRow(r.headers.get('x-request-id'))).toMatchObject({ status: 502, error_code: 'stream_error' });
  });

  it('a translated Responses stream that finishes without usage completes and is metered on an estimate', async () => {
    raw.sse([ROLE, ...DELTAS, STOP, '[DONE]']);
    const r = await call('/responses', { model: 'raw-translated', input: 'hi', stream: true });
    expect(events(r.text).at(-1)).toMatchObject({ type: 'response.completed' });
    const row = await ledgerRow(r.headers.get('x-request-id'));
    expect(row).toMatchObject({ status: 200, error_code: null, output_tokens: 3 });
    expect(row.input_tokens).toBeGreaterThan(0);
  });

  it('a native Responses stream whose terminal event has no usage is metered on an estimate', async () => {
    const resp = { id: 'resp_raw1', object: 'response', status: 'in_progress', output: [] };
    raw.sse([
      `event: response.created\ndata: ${JSON.stringify({ type: 'response.created', sequence_number: 0, response: resp })}`,
      `event: response.output_text.delta\ndata: ${JSON.stringify({ type: 'response.output_text.delta', sequence_number: 1, delta: 'Hi' })}`,
      `event: response.completed\ndata: ${JSON.stringify({ type: 'response.completed', sequence_number: 2, response: { ...resp, status: 'completed', usage: null } })}`,
    ]);
    const r = await call('/responses', { model: 'raw', input: 'hi', stream: true });
    expect(events(r.text).at(-1)).toMatchObject({ type: 'response.completed' });
    const row = await ledgerRow(r.headers.get('x-request-id'));
    expect(row).toMatchObject({ status: 200, output_tokens: 1 });
    expect(row.input_tokens).toBeGreaterThan(0);
  });

  // ───────────────────────────── routing (finding 21) ─────────────────────────────

  it('previous_response_id goes only to native targets, even when a chat-only target comes first', async () => {
    const r = await call('/responses', { model: 'mixed', input: 'next', previous_response_id: 'resp_abc' });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-gateway-provider')).toBe('openai');
    expect(raw.received).toHaveLength(0);
    expect(openai.requestsTo('/responses')[0].body.previous_response_id).toBe('resp_abc');
  });

  it('previous_response_id on a route with only chat-only targets is a 400', async () => {
    const r = await call('/responses', { model: 'raw-translated', input: 'next', previous_response_id: 'resp_abc' });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe('previous_response_id');
  });

  // ───────────────────────────── circuit breaker (finding 1) ─────────────────────────────

  it('a malformed /v1/responses body while a circuit is half-open does not wedge it', async () => {
    ollama.failNext(1, 503);
    const opened = await call('/responses', { model: 'circuit', input: 'hi' });
    expect(opened.status).toBe(503);
    const skipped = await call('/responses', { model: 'circuit', input: 'hi' });
    expect(skipped.body.error.code).toBe('circuit_open');
    await new Promise((r) => setTimeout(r, CIRCUIT_COOLDOWN_MS + 50));
    // Half-open now: malformed bodies must neither take the probe slot for good nor count as failures.
    const statuses: number[] = [];
    for (const extra of [
      { input: [null] },
      { input: [{ type: 'reasoning', summary: 'x' }] },
      { input: [{ role: 'user', content: 123 }] },
      { input: [{ role: 'user', content: [null] }] },
      { input: 'hi', tools: [null] },
    ]) {
      statuses.push((await call('/responses', { model: 'circuit', ...extra })).status);
    }
    const ok = await call('/responses', { model: 'circuit', input: 'hi' });
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('completed');
    expect(statuses).toEqual([400, 400, 400, 400, 400]);
  });

  // ───────────────────────────── limits (finding 7) ─────────────────────────────

  it('limits clamp absurd estimates and settles: counters stay finite and the TPM window is not bypassed', async () => {
    // Below the HTTP validation, straight at LimitsService (on Redis when TEST_REDIS_URL is set, else in memory).
    const limits = stack.gateway.get(LimitsService);
    const tenantId = randomUUID();
    const keyId = randomUUID();
    const principal = {
      keyId,
      keyName: 'k',
      keyPrefix: 'sk-gw-clamp',
      tenantId,
      tenantName: 'clamp',
      allowedModels: null,
      allowedIps: null,
      expiresAt: null,
      keyLimits: {},
      tenantLimits: { tokensPerMinute: 25_000_000, dailyBudgetUsd: 1_000_000_000 },
    } as unknown as Principal;
    const admissions = [];
    for (const est of [
      { tokens: Infinity, costUsd: NaN },
      { tokens: 1e300, costUsd: 1e300 },
    ]) {
      admissions.push(await limits.admit(principal, { model: 'm', ...est }));
    }
    // Two clamped 10M estimates fill 20M of the 25M window: a third cannot pass (1e300 never wraps to negative).
    await expect(limits.admit(principal, { model: 'm', tokens: 1e300, costUsd: 0 })).rejects.toMatchObject({ status: 429 });
    admissions[0].settle({ tokens: NaN, costUsd: -5 });
    admissions[1].settle({ tokens: 5, costUsd: 1e300 });
    await limits.idle();
    const c = await limits.counters(tenantId, keyId);
    for (const v of [c.tenant.daily.spentUnits, c.tenant.daily.reservedUnits]) {
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(0);
    }
    expect(c.tenant.daily.reservedUnits).toBe(0);
    expect(c.tenant.daily.spentUnits).toBe(10_000_000 * 100_000_000);
  });

  // ───────────────────────────── and afterwards ─────────────────────────────

  it('after all of that, the gateway still serves normal requests', async () => {
    const chat = await call('/chat/completions', { model: 'gpt-4o-mini', messages: user, max_tokens: 10_000_000 });
    expect(chat.status).toBe(200);
    expect(chat.body.choices[0].message.content).toContain('Hello from fake-openai');
    const emb = await call('/embeddings', { model: 'text-embedding-3-small', input: 'x' });
    expect(emb.status).toBe(200);
    const resp = await call('/responses', { model: 'gpt-oss:20b', input: 'hi' });
    expect(resp.status).toBe(200);
  });
});
