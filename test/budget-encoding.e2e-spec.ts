import * as http from 'node:http';
import * as zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { LimitsService, toUnits } from '@gw/limits';
import { FakeProvider, Stack, startStack } from '@gw/testing';

jest.setTimeout(90_000);

/**
 * Issue 12.1: a budget holds whatever the body's Content-Encoding. Real compressed bodies over node:http
 * (gzip, deflate, br, and chunked without Content-Length) → gateway → FakeProvider.
 *
 * `prompt-model` costs $10 per million input tokens and nothing for output, and every request carries
 * the same highly compressible 40,000-character prompt: the fake bills it as about 10,000 tokens, so each
 * request costs about $0.10, while its gzip body is under 1 KB (which, read from Content-Length, used to
 * be reserved as about 250 tokens, $0.0025: 64 at once spent 12× a $0.50 budget).
 */
const MODEL = 'prompt-model';
/** For n > 1: output priced, input not, $10,000 per 1M output tokens, so 100 output tokens are $1 per choice. */
const N_MODEL = 'choices-model';
const INPUT_PER_M = 10;
const BUDGET = 0.5;
const PROMPT = 'All work and no play makes Jack a dull boy. '.repeat(910).slice(0, 40_000);

type Encoding = 'identity' | 'gzip' | 'deflate' | 'br' | 'chunked' | 'chunked-gzip';

function encode(body: Buffer, enc: Encoding): { data: Buffer; headers: Record<string, string> } {
  switch (enc) {
    case 'identity':
      return { data: body, headers: { 'content-length': String(body.length) } };
    case 'chunked':
      return { data: body, headers: {} };
    case 'gzip':
      return { data: zlib.gzipSync(body), headers: { 'content-encoding': 'gzip' } };
    case 'chunked-gzip':
      return { data: zlib.gzipSync(body), headers: { 'content-encoding': 'gzip' } };
    case 'deflate':
      return { data: zlib.deflateSync(body), headers: { 'content-encoding': 'deflate' } };
    case 'br':
      return { data: zlib.brotliCompressSync(body), headers: { 'content-encoding': 'br' } };
  }
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
  ms: number;
}

/**
 * One POST over node:http. `chunked` bodies are written in pieces without Content-Length (node then uses
 * Transfer-Encoding: chunked); the others say their (compressed) length.
 */
function post(url: string, secret: string | undefined, data: Buffer, headers: Record<string, string>, chunked: boolean): Promise<Reply> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          ...(secret ? { authorization: `Bearer ${secret}` } : {}),
          ...(chunked ? {} : { 'content-length': String(data.length) }),
          ...headers,
        },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let body: any = text;
          try {
            body = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: performance.now() - t0 });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (chunked) {
      const step = Math.max(1, Math.ceil(data.length / 4));
      for (let i = 0; i < data.length; i += step) req.write(data.subarray(i, i + step));
      req.end();
    } else {
      req.end(data);
    }
  });
}

describe(`budgets hold whatever the body encoding (${process.env.TEST_REDIS_URL ? 'Redis' : 'in-memory'} counters)`, () => {
  let stack: Stack;
  let fake: FakeProvider;
  let limits: LimitsService;

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai', models: [MODEL, N_MODEL] });
    // BODY_LIMIT 1 MB: far above every real request here, far below the bombs.
    stack = await startStack({ bodyLimit: '1mb' });
    limits = stack.gateway.get(LimitsService);
    const provider = await stack.api('POST', '/admin/providers', { name: 'openai', kind: 'openai', baseUrl: fake.baseUrl });
    expect((await stack.api('POST', '/admin/routes', { modelPattern: MODEL, targets: [{ providerId: provider.body.id }] })).status).toBe(201);
    expect((await stack.api('POST', '/admin/prices', { modelPattern: MODEL, inputPerM: INPUT_PER_M, outputPerM: 0 })).status).toBe(201);
    expect((await stack.api('POST', '/admin/routes', { modelPattern: N_MODEL, targets: [{ providerId: provider.body.id }] })).status).toBe(201);
    expect((await stack.api('POST', '/admin/prices', { modelPattern: N_MODEL, inputPerM: 0, outputPerM: 10_000 })).status).toBe(201);
  });

  afterAll(async () => {
    await stack?.close();
    await fake?.close();
  });

  beforeEach(() => {
    fake.reset();
    fake.options.latencyMs = 0;
  });

  async function tenantWith(limitsOf: object) {
    const t = await stack.api('POST', '/admin/tenants', { name: `enc-${randomBytes(4).toString('hex')}`, limits: limitsOf });
    expect(t.status).toBe(201);
    const k = await stack.api('POST', `/admin/tenants/${t.body.id}/keys`, { name: 'k' });
    expect(k.status).toBe(201);
    return { tenantId: t.body.id as string, keyId: k.body.id as string, secret: k.body.secret as string };
  }

  const chatUrl = () => `${stack.baseURL}/chat/completions`;
  const body = (extra: object = {}) => Buffer.from(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], max_tokens: 16, ...extra }));

  describe.each<Encoding>(['identity', 'gzip', 'deflate', 'br', 'chunked', 'chunked-gzip'])('%s body', (enc) => {
    it('64 at once on a $0.50 budget: the reservation is the inflated prompt, spend stays within the budget', async () => {
      const { tenantId, keyId, secret } = await tenantWith({ dailyBudgetUsd: BUDGET });
      // a slow upstream, as found: all 64 are in flight together, so only reservations stand between them and the budget
      fake.options.latencyMs = 300;
      const plain = body();
      const { data, headers } = encode(plain, enc);
      if (enc !== 'identity' && enc !== 'chunked') expect(data.length).toBeLessThan(plain.length / 20);
      const results = await Promise.all(Array.from({ length: 64 }, () => post(chatUrl(), secret, data, headers, enc.startsWith('chunked'))));
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 429);
      expect(ok.length + refused.length).toBe(64);
      for (const r of refused) expect(['rate_limit_exceeded', 'insufficient_quota']).toContain(r.body.error.code);

      // the upstream received (and billed) the whole inflated prompt, once per admitted request
      const received = fake.requestsTo('/chat/completions');
      expect(received).toHaveLength(ok.length);
      for (const r of received) expect(r.body.messages[0].content).toBe(PROMPT);
      const perRequest = (ok[0].body.usage.prompt_tokens * INPUT_PER_M) / 1e6;
      expect(perRequest).toBeGreaterThan(0.09); // ≈ $0.10: the prompt really is ~10,000 tokens

      // Each reservation (inflated bytes / 4 ≥ what the fake bills) covers its request, so spend can pass
      // the budget by at most what requests in flight used beyond their reservations: here $0.00.
      const spent = ok.reduce((s, r) => s + (r.body.usage.prompt_tokens * INPUT_PER_M) / 1e6, 0);

      if (process.env.BUDGET_REPORT)
        console.log(`${enc}: ${ok.length}/64 admitted, spent $${spent.toFixed(4)} of $${BUDGET}, overshoot $${Math.max(0, spent - BUDGET).toFixed(4)}`);
      expect(spent).toBeLessThanOrEqual(BUDGET);
      expect(ok.length).toBeGreaterThanOrEqual(1);
      expect(ok.length).toBeLessThanOrEqual(Math.floor(BUDGET / perRequest));
      await limits.idle();
      expect((await limits.counters(tenantId, keyId)).tenant.daily).toEqual({ spentUnits: toUnits(spent), reservedUnits: 0 });
    });
  });

  it('n > 1: every choice is in the worst case (reservation, TPM headers, refusal)', async () => {
    const m = N_MODEL;
    const { secret } = await tenantWith({ dailyBudgetUsd: 3, tokensPerMinute: 100_000 });
    const b = (n: number) => Buffer.from(JSON.stringify({ model: m, messages: [{ role: 'user', content: 'hi' }], max_tokens: 100, n }));
    const two = await post(chatUrl(), secret, b(2), {}, false);
    expect(two.status).toBe(200);
    // TPM reserved the prompt (bytes / 4) plus 2 × 100
    expect(Number(two.headers['x-ratelimit-remaining-tokens'])).toBe(100_000 - Math.ceil(b(2).length / 4) - 200);
    const four = await post(chatUrl(), secret, b(4), {}, false);
    expect(four.status).toBe(429);
    expect(four.body.error.code).toBe('insufficient_quota');
    expect(four.body.error.message).toContain('may cost up to $4.00');
    for (const bad of [0, 1.5, 129, '2']) {
      const r = await post(chatUrl(), secret, Buffer.from(JSON.stringify({ model: m, messages: [{ role: 'user', content: 'hi' }], n: bad })), {}, false);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ param: 'n', code: 'invalid_value', type: 'invalid_request_error' });
    }
  });

  it('an encoding the gateway does not accept is a 415 OpenAI error, never a 500; a corrupt body a 400', async () => {
    const { tenantId, secret } = await tenantWith({ dailyBudgetUsd: BUDGET });
    // zstd is inflated where Node has it (22.15+), refused on Node 20 (the image's)
    for (const enc of ['compress', 'gzip, br', 'x-custom', ...('createZstdDecompress' in zlib ? [] : ['zstd'])]) {
      const r = await post(chatUrl(), secret, body(), { 'content-encoding': enc }, false);
      expect(r.status).toBe(415);
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'unsupported_media_type', param: null });
      expect(r.body.error.message).toContain(`"${enc}"`);
      expect(r.body.error.message).toContain('identity, gzip, deflate, br');
    }
    const charset = await post(chatUrl(), secret, body(), { 'content-type': 'application/json; charset=latin1' }, false);
    expect(charset.status).toBe(415);
    expect(charset.body.error.code).toBe('unsupported_media_type');
    const corrupt = await post(chatUrl(), secret, Buffer.from('definitely not gzip'), { 'content-encoding': 'gzip' }, false);
    expect(corrupt.status).toBe(400);
    expect(corrupt.body.error.type).toBe('invalid_request_error');
    // nothing reached the upstream
    expect(fake.requestsTo('/chat/completions')).toHaveLength(0);
    await stack.flushLedger();
    expect(await stack.sql(`SELECT 1 FROM usage_records WHERE tenant_id = $1`, [tenantId])).toHaveLength(0);
  });

  it.each<Encoding>(['gzip', 'deflate', 'br'])(
    'BODY_LIMIT bounds the inflated size: a %s body under 1 MB compressed, over it inflated, is a 413',
    async (enc) => {
      const { secret } = await tenantWith({});
      const big = body({ padding: ' '.repeat(1_200_000) });
      const { data, headers } = encode(big, enc);
      expect(data.length).toBeLessThan(20_000);
      const r = await post(chatUrl(), secret, data, headers, false);
      expect(r.status).toBe(413);
      expect(r.body.error).toMatchObject({ code: 'request_too_large', type: 'invalid_request_error' });
      expect(fake.requestsTo('/chat/completions')).toHaveLength(0);
    },
  );

  it('a zip bomb (4 GiB of zeros in 4 MB of gzip) is refused with a 413 without being inflated', async () => {
    const { secret } = await tenantWith({});
    // gzip members concatenate: 256 × 16 MiB of zeros
    const member = zlib.gzipSync(Buffer.alloc(16 << 20));
    const bomb = Buffer.concat(Array.from({ length: 256 }, () => member));
    expect(bomb.length).toBeLessThan(5_000_000);
    const cpu0 = process.cpuUsage();
    const r = await post(chatUrl(), secret, bomb, { 'content-encoding': 'gzip' }, false);
    const cpu = process.cpuUsage(cpu0);
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('request_too_large');
    // Inflating 4 GiB costs several CPU-seconds (gunzip runs at ~1 GB/s at best); stopping at the 1 MB limit
    // and discarding the rest of the upload costs milliseconds. Gateway and test share this process.
    expect((cpu.user + cpu.system) / 1e6).toBeLessThan(1.5);
    expect(fake.requestsTo('/chat/completions')).toHaveLength(0);
  });
});
