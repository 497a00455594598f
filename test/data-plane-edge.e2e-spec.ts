import { gzipSync } from 'node:zlib';
import { connect } from 'node:net';
import { storage } from 'nestjs-pino/storage';
import { FakeProvider, Stack, delta, scrape, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(60_000);

/**
 * The data plane's own HTTP edge (apps/gateway/src/edge/data-plane.edge.ts) answers the four POST routes
 * ahead of Express; everything else, other spellings of those paths included, still goes through Express and
 * Nest. Both must answer alike, and the gateway must never enter nestjs-pino's AsyncLocalStorage (its promise
 * hooks, once on, cost every promise of the process).
 */
describe('the data-plane edge', () => {
  let stack: Stack;
  let fake: FakeProvider;
  let secret: string;
  let providerId: string;
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  const post = (path: string, init: { body?: string | Buffer; headers?: Record<string, string> } = {}) =>
    fetch(`${stack.gatewayUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', ...init.headers },
      body: init.body ?? body,
    });

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai' });
    // A small body limit: the 413 is the same whatever the limit, and cheaper to provoke.
    stack = await startStack({ bodyLimit: '1mb' });
    ({ secret, providerId } = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl }, patterns: ['gpt-4o-mini'] }));
    // An alias: the upstream must be sent `gpt-4o-mini`, whatever the client wrote.
    expect((await stack.api('POST', '/admin/routes', { modelPattern: 'mini-alias', targets: [{ providerId, model: 'gpt-4o-mini' }] })).status).toBe(201);
  });

  afterAll(async () => {
    await stack?.close();
    await fake?.close();
  });

  it('serves the exact path, with a query string, and the spellings only Express matches, with the same answer', async () => {
    for (const path of ['/v1/chat/completions', '/v1/chat/completions?trace=1', '/v1/chat/completions/', '/V1/Chat/Completions']) {
      const r = await post(path);
      expect({ path, status: r.status }).toEqual({ path, status: 200 });
      expect(r.headers.get('x-request-id')).toMatch(/^req_/);
      expect(r.headers.get('x-gateway-provider')).toBe('openai');
      const j = (await r.json()) as { object: string; usage: unknown };
      expect(j.object).toBe('chat.completion');
      expect(j.usage).toBeDefined();
    }
  });

  it('refuses bad bodies OpenAI-shaped, as the Express edge does: 400 invalid JSON, 413 too large, 415 encoding, gzip inflated', async () => {
    for (const path of ['/v1/chat/completions', '/v1/chat/completions/']) {
      const bad = await post(path, { body: '{"model":' });
      expect(bad.status).toBe(400);
      expect(bad.headers.get('content-type')).toMatch(/^application\/json/);
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('invalid_json');

      const big = await post(path, { body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(2 * 1024 * 1024) }] }) });
      expect(big.status).toBe(413);
      expect(((await big.json()) as { error: { code: string } }).error.code).toBe('request_too_large');

      const enc = await post(path, { headers: { 'content-encoding': 'x-unknown' } });
      expect(enc.status).toBe(415);
      expect(((await enc.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');

      const gz = await post(path, { body: gzipSync(body), headers: { 'content-encoding': 'gzip' } });
      expect(gz.status).toBe(200);
    }
  });

  it('a pass-through body goes upstream as the client sent it, only the model replaced; a second model key is re-serialised away', async () => {
    // Codex's shape (model first, non-ASCII text, an ANSI escape) with what re-serialising would change: spaces
    // between tokens, an escaped solidus, an escaped é.
    const sent =
      '{"model":"mini-alias", "input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"h\\u00e9llo \\u001b[0m ✓ a\\/b"}]}],\n "stream" : false,"store":false}';
    fake.reset();
    const r = await post('/v1/responses', { body: sent });
    expect(r.status).toBe(200);
    const [got] = fake.requestsTo('/responses');
    expect(got.rawBody).toBe(sent.replace('"mini-alias"', '"gpt-4o-mini"'));

    // A duplicate key: JSON.parse (ours and the upstream's) keeps the last one. Forwarding the bytes with the first
    // one replaced would let the upstream read the client's model; re-serialised, it can only read the routed one.
    const dup = '{"model":"mini-alias","input":"hi","stream":false,"\\u006dodel":"mini-alias"}';
    fake.reset();
    const d = await post('/v1/responses', { body: dup });
    expect(d.status).toBe(200);
    const [up] = fake.requestsTo('/responses');
    expect(JSON.parse(up.rawBody).model).toBe('gpt-4o-mini');
    expect(up.rawBody.match(/model/g)).toHaveLength(1);

    // Another key twice: re-serialised too, so a parser that keeps the first copy reads what the gateway read.
    fake.reset();
    const twice = await post('/v1/responses', { body: '{"model":"mini-alias","stream":true,"input":"hi","stream":false}' });
    expect(twice.status).toBe(200);
    expect(fake.requestsTo('/responses')[0].rawBody.match(/"stream"/g)).toHaveLength(1);

    // A key differing only in case from one the gateway reads (Go's decoder, Ollama's, would take it): refused.
    fake.reset();
    const cased = await post('/v1/responses', { body: '{"model":"mini-alias","input":"hi","Model":"gpt-4o"}' });
    expect(cased.status).toBe(400);
    expect(((await cased.json()) as { error: { code: string; param: string } }).error).toMatchObject({ code: 'ambiguous_parameter', param: 'Model' });
    expect(fake.requestsTo('/responses')).toHaveLength(0);
  });

  it('a client x-request-id is echoed apart; the HTTP metrics count the route by its path', async () => {
    const before = await scrape(`${stack.gatewayUrl}/metrics`);
    const r = await post('/v1/chat/completions', { headers: { 'x-request-id': 'client-trace-0001' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-client-request-id')).toBe('client-trace-0001');
    expect(r.headers.get('x-request-id')).not.toBe('client-trace-0001');
    const anon = await fetch(`${stack.gatewayUrl}/v1/chat/completions`, { method: 'POST', body });
    expect(anon.status).toBe(401);
    const after = await scrape(`${stack.gatewayUrl}/metrics`);
    expect(delta(before, after, 'http_requests_total', { app: 'gateway', method: 'POST', route: '/v1/chat/completions', status_class: '2xx' })).toBe(1);
    expect(delta(before, after, 'http_requests_total', { app: 'gateway', method: 'POST', route: '/v1/chat/completions', status_class: '4xx' })).toBe(1);
  });

  it('never enters an AsyncLocalStorage context, on the data plane or on the routes Express serves', async () => {
    const run = jest.spyOn(storage, 'run');
    try {
      expect((await post('/v1/chat/completions')).status).toBe(200);
      expect((await post('/v1/chat/completions/')).status).toBe(200);
      expect((await fetch(`${stack.gatewayUrl}/readyz`)).status).toBe(200);
      expect((await fetch(`${stack.gatewayUrl}/v1/models`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);
      expect(run).not.toHaveBeenCalled();
    } finally {
      run.mockRestore();
    }
  });

  it('an Expect other than 100-continue gets an OpenAI-shaped 417 (Node answered a bare one), and the body is not read', async () => {
    const { hostname, port } = new URL(stack.gatewayUrl);
    const raw = (req: string) =>
      new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const s = connect(Number(port), hostname, () => s.write(req));
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        s.on('error', reject);
      });
    const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${secret}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n`;
    const upstream = fake.requestsTo('/chat/completions').length;
    const expectation = await raw(`${head}Expect: 200-ok\r\n\r\n${body}`);
    expect(expectation).toMatch(/^HTTP\/1\.1 417 /);
    expect(JSON.parse(expectation.slice(expectation.indexOf('\r\n\r\n') + 4)).error.code).toBe('expectation_failed');
    expect(fake.requestsTo('/chat/completions').length).toBe(upstream);
  });

  it('a body that is not what its Content-Encoding says is a 400 invalid_body_encoding, not a code-less "Bad Request"', async () => {
    for (const enc of ['gzip', 'deflate', 'br']) {
      const r = await post('/v1/chat/completions', { headers: { 'content-encoding': enc } });
      expect({ enc, status: r.status }).toEqual({ enc, status: 400 });
      expect(((await r.json()) as any).error.code).toBe('invalid_body_encoding');
    }
  });
});
