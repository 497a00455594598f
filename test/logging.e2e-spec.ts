import OpenAI from 'openai';
import { FakeProvider, Stack, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(60_000);

const PROMPT = 'PROMPT-CANARY-7f3a';
const COMPLETION = 'COMPLETION-CANARY-91bd';
const UPSTREAM_KEY = 'sk-upstream-log-canary';

type Line = Record<string, unknown>;

/**
 * JSON request logs (pino via nestjs-pino): one line per request with who and what and how it went,
 * never the prompt, the completion or a key; LOG_LEVEL respected.
 */
describe('structured logs', () => {
  let out = '';
  let spy: jest.SpyInstance;
  let openai: FakeProvider;
  let info: Stack;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;
  let client: OpenAI;
  const lines = (): Line[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  const linesFor = (requestId: string | null) => lines().filter((l) => l.requestId === requestId);

  beforeAll(async () => {
    // Captured, not printed: keeps the test output quiet and lets us read every line.
    spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return true;
    });
    openai = await FakeProvider.start({ flavor: 'openai', apiKey: UPSTREAM_KEY });
    info = await startStack({ logLevel: 'info' });
    tenant = await seedTenant(info, {
      tenant: 'logco',
      provider: { kind: 'openai', name: 'openai', baseUrl: openai.baseUrl, credential: UPSTREAM_KEY },
      patterns: ['gpt-4o-mini'],
    });
    client = new OpenAI({ apiKey: tenant.secret, baseURL: info.baseURL, maxRetries: 0 });
  });

  afterAll(async () => {
    await info?.close();
    await openai?.close();
    spy?.mockRestore();
  });

  beforeEach(() => openai.reset());

  it('one info line per request: request id, tenant, key prefix, model, provider, status, latency, tokens', async () => {
    openai.script({ text: COMPLETION });
    const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }] }).withResponse();
    expect(data.choices[0].message.content).toBe(COMPLETION);
    const id = response.headers.get('x-request-id');
    const mine = linesFor(id);
    expect(mine).toHaveLength(1);
    const l = mine[0];
    expect(l).toMatchObject({
      level: 'info',
      app: 'gateway',
      msg: 'request completed',
      method: 'POST',
      url: '/v1/chat/completions',
      tenant: 'logco',
      keyPrefix: tenant.secret.slice(0, (l.keyPrefix as string).length),
      model: 'gpt-4o-mini',
      provider: 'openai',
      status: 200,
      clientIp: '127.0.0.1',
      inputTokens: data.usage!.prompt_tokens,
      outputTokens: data.usage!.completion_tokens,
      streamed: false,
    });
    expect((l.keyPrefix as string).length).toBeGreaterThanOrEqual(8);
    expect((l.keyPrefix as string).length).toBeLessThan(tenant.secret.length / 2);
    expect(typeof l.latencyMs).toBe('number');
    expect(typeof l.time).toBe('string');
  });

  it('a translated /v1/responses logs what the chat-only provider could not be given (`dropped`), as its header says', async () => {
    const ollama = await FakeProvider.start({ flavor: 'ollama' });
    try {
      const p = await info.api('POST', '/admin/providers', { name: 'ollama-log', kind: 'ollama', baseUrl: ollama.baseUrl });
      await info.api('POST', '/admin/routes', { modelPattern: 'llama3.2', targets: [{ providerId: p.body.id }] });
      const r = await fetch(`${info.baseURL}/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tenant.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'llama3.2', input: PROMPT, tools: [{ type: 'web_search' }], text: { verbosity: 'low' } }),
      });
      expect(r.status).toBe(200);
      expect(r.headers.get('x-gateway-dropped')).toBe('tools:web_search,text.verbosity');
      expect(linesFor(r.headers.get('x-request-id'))).toEqual([
        expect.objectContaining({ status: 200, provider: 'ollama-log', dropped: 'tools:web_search,text.verbosity' }),
      ]);
    } finally {
      await ollama.close();
    }
  });

  it('clientIp is the address the limits and allowedIps see: without TRUSTED_PROXIES, X-Forwarded-For is not believed', async () => {
    const r = await fetch(`${info.baseURL}/models`, { headers: { authorization: `Bearer ${tenant.secret}`, 'x-forwarded-for': '203.0.113.5' } });
    expect(r.status).toBe(200);
    expect(linesFor(r.headers.get('x-request-id'))).toEqual([expect.objectContaining({ url: '/v1/models', clientIp: '127.0.0.1' })]);
  });

  it('a stream that breaks after its 200 head is logged as the error it was', async () => {
    const chunks = openai.options.streamChunks;
    openai.options.streamChunks = 6;
    openai.dropMidStreamNext(1, 2);
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }], stream: true })
      .withResponse();
    await (async () => {
      for await (const _ of stream) void _;
    })().catch(() => undefined);
    const mine = linesFor(response.headers.get('x-request-id'));
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ level: 'warn', msg: 'request failed', status: 502, errorCode: 'stream_error', streamed: true, provider: 'openai' });
    openai.options.streamChunks = chunks;
  });

  it('upstream failures are warn lines; client errors and unauthenticated calls are info lines', async () => {
    openai.failNext(2, 503);
    const failed = await fetch(`${info.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT }] }),
    });
    expect(failed.status).toBe(503);
    expect(linesFor(failed.headers.get('x-request-id'))[0]).toMatchObject({ level: 'warn', status: 503, tenant: 'logco', attempts: 2 });
    const anon = await fetch(`${info.baseURL}/chat/completions`, { method: 'POST', body: '{}' });
    expect(anon.status).toBe(401);
    const l = linesFor(anon.headers.get('x-request-id'))[0];
    expect(l).toMatchObject({ level: 'info', status: 401, app: 'gateway' });
    expect(l.tenant).toBeUndefined();
  });

  it('a request id the client sent is logged and echoed next to ours, never instead of it', async () => {
    const res = await fetch(`${info.baseURL}/models`, { headers: { authorization: `Bearer ${tenant.secret}`, 'x-request-id': 'trace-abc-12345678' } });
    expect(res.status).toBe(200);
    const ours = res.headers.get('x-request-id');
    expect(ours).toMatch(/^req_/);
    expect(res.headers.get('x-client-request-id')).toBe('trace-abc-12345678');
    expect(linesFor('trace-abc-12345678')).toHaveLength(0);
    expect(linesFor(ours)).toEqual([expect.objectContaining({ clientRequestId: 'trace-abc-12345678' })]);
  });

  it('the admin API logs its requests too, with the caller role', async () => {
    const r = await fetch(`${info.adminUrl}/admin/tenants`, { headers: { authorization: `Bearer test-admin-token-0123456789abcdef` } });
    expect(r.status).toBe(200);
    expect(linesFor(r.headers.get('x-request-id'))[0]).toMatchObject({ app: 'admin', method: 'GET', url: '/admin/tenants', status: 200, role: 'root' });
  });

  it('scrapes and health checks are not logged', async () => {
    const before = lines().length;
    await fetch(`${info.gatewayUrl}/metrics`);
    await fetch(`${info.gatewayUrl}/healthz`);
    await fetch(`${info.adminUrl}/readyz`);
    expect(lines().length).toBe(before);
  });

  it('never logs a prompt, a completion, a tenant key or a provider credential', () => {
    expect(lines().length).toBeGreaterThan(5);
    expect(out).not.toContain(PROMPT);
    expect(out).not.toContain(COMPLETION);
    expect(out).not.toContain(tenant.secret);
    expect(out).not.toContain(UPSTREAM_KEY);
  });

  it('LOG_LEVEL=warn logs failed requests only; LOG_LEVEL=error no request at all (what the other tests use)', async () => {
    for (const level of ['warn', 'error'] as const) {
      const quiet = await startStack({ logLevel: level });
      try {
        const t = await seedTenant(quiet, {
          tenant: `quiet-${level}`,
          provider: { kind: 'openai', name: 'openai', baseUrl: openai.baseUrl, credential: UPSTREAM_KEY },
          patterns: ['gpt-4o-mini'],
        });
        const c = new OpenAI({ apiKey: t.secret, baseURL: quiet.baseURL, maxRetries: 0 });
        const ok = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }).withResponse();
        openai.failNext(2, 500);
        const bad = await fetch(`${quiet.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${t.secret}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
        });
        expect(bad.status).toBe(500);
        expect(linesFor(ok.response.headers.get('x-request-id'))).toHaveLength(0);
        expect(lines().some((l) => l.tenant === `quiet-${level}` && l.level === 'info')).toBe(false);
        const failedLines = linesFor(bad.headers.get('x-request-id'));
        if (level === 'warn') expect(failedLines).toEqual([expect.objectContaining({ level: 'warn', status: 500, tenant: 'quiet-warn' })]);
        else expect(failedLines).toEqual([]);
      } finally {
        await quiet.close();
      }
    }
  });
});
