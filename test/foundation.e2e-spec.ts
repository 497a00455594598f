import OpenAI from 'openai';
import { FakeProvider, Stack, eventually, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(60_000);

describe('foundation: chat, embeddings, models, errors, ledger (openai SDK → gateway → fake provider)', () => {
  let stack: Stack;
  let openai: FakeProvider;
  let ollama: FakeProvider;
  let router: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;
  let client: OpenAI;

  beforeAll(async () => {
    openai = await FakeProvider.start({ flavor: 'openai', apiKey: 'sk-upstream-openai-secret' });
    ollama = await FakeProvider.start({ flavor: 'ollama' });
    router = await FakeProvider.start({ flavor: 'openrouter', apiKey: 'sk-or-upstream-secret' });
    stack = await startStack();
    tenant = await seedTenant(stack, {
      provider: { kind: 'openai', baseUrl: openai.baseUrl, credential: 'sk-upstream-openai-secret' },
      patterns: ['gpt-4o-mini', 'text-embedding-3-small', 'fast'],
    });
    const ol = await stack.api('POST', '/admin/providers', { name: 'ollama', kind: 'ollama', baseUrl: ollama.baseUrl });
    await stack.api('POST', '/admin/routes', { modelPattern: 'gpt-oss*', targets: [{ providerId: ol.body.id }] });
    const or = await stack.api('POST', '/admin/providers', {
      name: 'openrouter',
      kind: 'openrouter',
      baseUrl: router.baseUrl,
      credential: 'sk-or-upstream-secret',
      settings: { providerPreferences: { sort: 'price' } },
    });
    await stack.api('POST', '/admin/routes', { modelPattern: '*/*', targets: [{ providerId: or.body.id }] });
    // alias: "fast" → gpt-4o-mini upstream
    const routes = (await stack.api('GET', '/admin/routes')).body;
    const fast = routes.find((r: any) => r.modelPattern === 'fast');
    await stack.api('PATCH', `/admin/routes/${fast.id}`, { targets: [{ providerId: tenant.providerId, model: 'gpt-4o-mini' }] });
    client = new OpenAI({ apiKey: tenant.secret, baseURL: stack.baseURL, maxRetries: 0 });
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([openai?.close(), ollama?.close(), router?.close()]);
  });

  beforeEach(() => {
    openai.reset();
    ollama.reset();
    router.reset();
  });

  it('forwards a non-stream completion with the provider credential, never the tenant key', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(r.choices[0].message.content).toBe('Hello from fake-openai (gpt-4o-mini)');
    const got = openai.requestsTo('/chat/completions');
    expect(got).toHaveLength(1);
    expect(got[0].headers.authorization).toBe('Bearer sk-upstream-openai-secret');
    expect(JSON.stringify(got[0].headers)).not.toContain(tenant.secret);
    expect(got[0].body.model).toBe('gpt-4o-mini');
  });

  it('rewrites an alias to the upstream model', async () => {
    await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hi' }] });
    expect(openai.requestsTo('/chat/completions')[0].body.model).toBe('gpt-4o-mini');
  });

  it('streams chunk by chunk and hides the usage chunk the client did not ask for', async () => {
    openai.options.streamChunks = 6;
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    let chunks = 0;
    let sawUsage = false;
    for await (const c of stream) {
      chunks++;
      text += c.choices[0]?.delta?.content ?? '';
      if (c.usage) sawUsage = true;
    }
    expect(text).toBe('Hello from fake-openai (gpt-4o-mini)');
    expect(chunks).toBeGreaterThanOrEqual(7);
    expect(sawUsage).toBe(false);
    // …but the gateway asked the upstream for it, to meter the stream.
    expect(openai.requestsTo('/chat/completions')[0].body.stream_options).toEqual({ include_usage: true });
  });

  it('relays the usage chunk when the client asks for it', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: any;
    for await (const c of stream) if (c.usage) usage = c.usage;
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('streams without buffering: the first chunk arrives while the upstream is still writing', async () => {
    // An upstream of its own writes its first event, then pauses for a minute: a gateway that buffered the
    // stream would deliver nothing before that. An ordering check, not a timing one: a slow machine cannot flake it.
    const paused = await FakeProvider.start({ flavor: 'openai', chunkDelayMs: 60_000, streamChunks: 3 });
    const p = await stack.api('POST', '/admin/providers', { name: 'paused', kind: 'openai', baseUrl: paused.baseUrl });
    const route = await stack.api('POST', '/admin/routes', { modelPattern: 'paused-model', targets: [{ providerId: p.body.id, model: 'gpt-4o-mini' }] });
    try {
      const stream = await client.chat.completions.create({ model: 'paused-model', messages: [{ role: 'user', content: 'hi' }], stream: true });
      const events = stream[Symbol.asyncIterator]();
      const first = await Promise.race([
        events.next(),
        new Promise<'upstream still paused, nothing relayed'>((r) => setTimeout(() => r('upstream still paused, nothing relayed'), 20_000).unref()),
      ]);
      expect(typeof first === 'string' ? first : first.done).toBe(false);
      // End the pause the hard way; the client reads the broken stream to its end.
      await paused.close();
      await (async () => {
        for (let e = await events.next(); !e.done; e = await events.next());
      })().catch(() => undefined);
    } finally {
      await paused.close();
      await stack.api('DELETE', `/admin/routes/${route.body.id}`);
      await stack.api('DELETE', `/admin/providers/${p.body.id}`);
    }
  });

  it('routes gpt-oss* to Ollama and vendor/model ids to OpenRouter with its preferences and headers', async () => {
    const a = await client.chat.completions.create({ model: 'gpt-oss:20b', messages: [{ role: 'user', content: 'hi' }] });
    expect(a.choices[0].message.content).toContain('fake-ollama');
    const b = await client.chat.completions.create({ model: 'anthropic/claude-3.5-sonnet', messages: [{ role: 'user', content: 'hi' }] });
    expect(b.choices[0].message.content).toContain('fake-openrouter');
    const sent = router.requestsTo('/chat/completions')[0];
    expect(sent.body.provider).toEqual({ sort: 'price' });
    expect(sent.headers['x-title']).toBeDefined();
    expect(sent.headers.authorization).toBe('Bearer sk-or-upstream-secret');
    expect(openai.requestsTo('/chat/completions')).toHaveLength(0);
  });

  it('serves embeddings', async () => {
    const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
    expect(r.data).toHaveLength(2);
    expect(r.data[0].embedding.length).toBeGreaterThan(0);
    expect(r.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it('lists only the models this key may use', async () => {
    const all = (await client.models.list()).data.map((m) => m.id);
    expect(all).toEqual(expect.arrayContaining(['gpt-4o-mini', 'text-embedding-3-small', 'fast']));
    const k = await stack.api('POST', `/admin/tenants/${tenant.tenantId}/keys`, { name: 'narrow', allowedModels: ['gpt-4o*'] });
    const narrow = new OpenAI({ apiKey: k.body.secret, baseURL: stack.baseURL, maxRetries: 0 });
    const ids = (await narrow.models.list()).data.map((m) => m.id);
    expect(ids).toEqual(['gpt-4o-mini']);
    // …and is refused other models with 403
    await expect(narrow.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({
      status: 403,
      code: 'model_not_allowed',
    });
  });

  describe('errors are OpenAI-shaped', () => {
    it('401 on a missing or wrong key', async () => {
      const res = await fetch(`${stack.baseURL}/chat/completions`, { method: 'POST', body: '{}' });
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error).toMatchObject({ code: 'missing_api_key', type: 'invalid_request_error', param: null });
      const bad = new OpenAI({ apiKey: 'sk-gw-nope', baseURL: stack.baseURL, maxRetries: 0 });
      await expect(bad.models.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
    });

    it('401 right after revocation (the in-process change event, no polling wait), and for an expired key', async () => {
      const k = await stack.api('POST', `/admin/tenants/${tenant.tenantId}/keys`, { name: 'temp' });
      const c = new OpenAI({ apiKey: k.body.secret, baseURL: stack.baseURL, maxRetries: 0 });
      await c.models.list();
      const revokedAt = Date.now();
      expect((await stack.api('POST', `/admin/tenants/${tenant.tenantId}/keys/${k.body.id}/revoke`)).status).toBe(200);
      // Generous bounds for a loaded CI machine: what this catches is a revocation that never takes effect.
      const refused = await eventually(
        async () =>
          c.models.list().then(
            () => false,
            (e) => e.status === 401,
          ),
        5000,
        20,
      );
      expect(refused).toBe(true);
      expect(Date.now() - revokedAt).toBeLessThan(5000);
      const exp = await stack.api('POST', `/admin/tenants/${tenant.tenantId}/keys`, { name: 'old', expiresAt: new Date(Date.now() - 1000).toISOString() });
      const e = new OpenAI({ apiKey: exp.body.secret, baseURL: stack.baseURL, maxRetries: 0 });
      await expect(e.models.list()).rejects.toMatchObject({ status: 401, message: expect.stringContaining('expired') });
    });

    it('404 model_not_found for an unrouted model', async () => {
      await expect(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({
        status: 404,
        code: 'model_not_found',
      });
    });

    it('404 from Ollama tells the user to ollama pull', async () => {
      const err = await client.chat.completions.create({ model: 'gpt-oss:120b', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      expect(err.status).toBe(404);
      expect(err.message).toContain('ollama pull gpt-oss:120b');
      expect(err.message).toContain('ollama:');
    });

    it('400 on malformed JSON and on bad fields, never 500', async () => {
      const post = (body: string) =>
        fetch(`${stack.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tenant.secret}`, 'content-type': 'application/json' },
          body,
        });
      const r1 = await post('{"model": "gpt-4o-mini", "messages": [');
      expect(r1.status).toBe(400);
      expect(((await r1.json()) as any).error.code).toBe('invalid_json');
      const r2 = await post(JSON.stringify({ messages: [] }));
      expect(r2.status).toBe(400);
      expect(((await r2.json()) as any).error.param).toBe('model');
      const r3 = await post(JSON.stringify({ model: 'gpt-4o-mini', messages: 'hi' }));
      expect(((await r3.json()) as any).error.param).toBe('messages');
      const r4 = await post('[1,2]');
      expect(r4.status).toBe(400);
      const r5 = await post(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: 'yes' }));
      expect(((await r5.json()) as any).error.param).toBe('stream');
    });

    it('passes upstream failures on with their status, naming the provider and never its credential', async () => {
      openai.failNext(1, 400, {
        body: { error: { message: 'Incorrect API key provided: sk-upstream-openai-secret', type: 'invalid_request_error', code: 'invalid_api_key' } },
      });
      const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
      expect(err.status).toBe(400);
      expect(err.message).toContain('openai:');
      expect(err.message).not.toContain('sk-upstream-openai-secret');
    });
  });

  it('meters every authenticated request as one ledger row, with tokens and cost', async () => {
    await stack.flushLedger();
    const before = Number((await stack.sql('SELECT count(*) AS n FROM usage_records'))[0].n);
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'count me' }] });
    const s = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'stream me' }], stream: true });
    for await (const _ of s) void _;
    await client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }).catch(() => undefined);
    await stack.flushLedger();
    const rows = await stack.sql(`SELECT * FROM usage_records ORDER BY started_at DESC LIMIT 3`);
    const after = Number((await stack.sql('SELECT count(*) AS n FROM usage_records'))[0].n);
    expect(after - before).toBe(3);
    const [notFound, streamed, plain] = rows;
    expect(plain.tenant_id).toBe(tenant.tenantId);
    expect(plain.key_id).toBe(tenant.keyId);
    expect(plain.input_tokens).toBe(r.usage!.prompt_tokens);
    expect(plain.output_tokens).toBe(r.usage!.completion_tokens);
    expect(Number(plain.cost_usd)).toBeGreaterThan(0);
    expect(plain.status).toBe(200);
    expect(streamed.streamed).toBe(true);
    expect(streamed.output_tokens).toBeGreaterThan(0);
    expect(streamed.ttfb_ms).not.toBeNull();
    expect(notFound.status).toBe(404);
    expect(notFound.error_code).toBe('model_not_found');
  });
});
