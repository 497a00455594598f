import OpenAI from 'openai';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { RedisTargetBackoff } from '../apps/gateway/src/proxy/redis-target.backoff';
import {
  FakeProvider,
  GatewayReplica,
  Stack,
  TEST_ADMIN_TOKEN,
  delta,
  eventually,
  metricValue,
  scrape,
  seedTenant,
  startGatewayReplica,
  startStack,
} from '@gw/testing';

jest.setTimeout(60_000);

/** Short on purpose: the same mechanics as the 60 s / 10 min defaults, measured in seconds. */
const FIRST_BYTE_MS = 600;
const TOTAL_MS = 3000;
const THRESHOLD = 2;

const REDIS = process.env.TEST_REDIS_URL;
// scripts/test.mjs sets REQUIRE_REDIS=1 for the CI run that has Redis: skipping there would be a silent pass.
if (!REDIS && process.env.REQUIRE_REDIS === '1') throw new Error('upstream-errors.e2e-spec: REQUIRE_REDIS=1 but TEST_REDIS_URL is not set');
if (!REDIS) {
  console.warn('upstream-errors.e2e-spec: TEST_REDIS_URL is not set, so the shared-backoff replica test is SKIPPED (not passed).');
}
const withRedis = REDIS ? it : it.skip;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rid = (tag: string) => `${tag}-${randomBytes(6).toString('hex')}`;

/**
 * Issue 12, point 6: one provider's errors never take the team down. An upstream 429 backs its target off
 * (never opening the circuit), an empty provider account or a refused credential fails over or names the
 * provider and the operator, and a hung upstream answers 504 within its timeout, called once per target.
 */
describe('upstream errors: 429 backoff, quota, auth, timeouts', () => {
  let stack: Stack;
  let a: FakeProvider;
  let b: FakeProvider;
  let secret: string;
  let A: string;
  let B: string;

  async function route(modelPattern: string, targets: object[], settings: object = {}): Promise<void> {
    const r = await stack.api('POST', '/admin/routes', { modelPattern, targets, settings: { maxAttempts: 3, backoffMs: 10, ...settings } });
    if (r.status !== 201) throw new Error(`route ${modelPattern}: ${r.status} ${JSON.stringify(r.body)}`);
  }

  const serverIds = new Map<string, string>();

  async function post(base: string, path: string, body: object, id?: string): Promise<{ status: number; headers: Headers; body: any; ms: number }> {
    const t0 = Date.now();
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', ...(id ? { 'x-request-id': id } : {}) },
      body: JSON.stringify(body),
    });
    if (id) serverIds.set(id, res.headers.get('x-request-id')!);
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* SSE */
    }
    return { status: res.status, headers: res.headers, body: parsed, ms: Date.now() - t0 };
  }

  const chat = (model: string, opts: { stream?: boolean; id?: string; base?: string } = {}) =>
    post(opts.base ?? stack.baseURL, '/chat/completions', { model, messages: [{ role: 'user', content: 'hi' }], stream: opts.stream === true }, opts.id);

  const hits = (f: FakeProvider, path = '/chat/completions') => f.requestsTo(path).length;

  async function ledgerRow(id: string): Promise<any> {
    return eventually(
      async () => {
        await stack.flushLedger().catch(() => undefined);
        return (await stack.sql('SELECT * FROM usage_records WHERE request_id = $1', [serverIds.get(id)]))[0];
      },
      5000,
      25,
      `the ledger row of ${id}`,
    );
  }

  async function circuit(target: string): Promise<any> {
    const r = await fetch(`${stack.gatewayUrl}/admin/circuits`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    return ((await r.json()) as { data: any[] }).data.find((c) => c.target === target);
  }

  beforeAll(async () => {
    a = await FakeProvider.start({ flavor: 'openai', strictModels: false });
    b = await FakeProvider.start({ flavor: 'openrouter', strictModels: false });
    stack = await startStack({
      circuitFailureThreshold: THRESHOLD,
      circuitCooldownMs: 60_000,
      upstreamFirstByteTimeoutMs: FIRST_BYTE_MS,
      upstreamTotalTimeoutMs: TOTAL_MS,
    });
    const t = await seedTenant(stack, { provider: { kind: 'openai', name: 'prov-a', baseUrl: a.baseUrl } });
    secret = t.secret;
    A = t.providerId;
    B = (await stack.api('POST', '/admin/providers', { name: 'prov-b', kind: 'openrouter', baseUrl: b.baseUrl })).body.id;
    await route('rl', [{ providerId: A, model: 'm-rl' }]);
    await route('rl-reset', [{ providerId: A, model: 'm-rl-reset' }]);
    for (const tag of ['429', 'quota', '401', '403']) {
      await route(`fo-${tag}`, [
        { providerId: A, model: `m-fo-${tag}`, priority: 0 },
        { providerId: B, model: `m-fo-${tag}`, priority: 1 },
      ]);
    }
    await route('fo-402', [
      { providerId: B, model: 'm-fo-402', priority: 0 },
      { providerId: A, model: 'm-fo-402', priority: 1 },
    ]);
    await route('quota-solo', [{ providerId: A, model: 'm-quota-solo' }]);
    await route('quota-resp', [{ providerId: A, model: 'm-quota-resp' }]);
    await route('hang-stream', [
      { providerId: A, model: 'm-hang-s', priority: 0 },
      { providerId: B, model: 'm-hang-s', priority: 1 },
    ]);
    await route('hang-json', [{ providerId: A, model: 'm-hang-j' }]);
    await route('slow', [{ providerId: A, model: 'm-slow' }]);
    await route('shared', [{ providerId: A, model: 'm-shared' }]);
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([a?.close(), b?.close()]);
  });

  beforeEach(() => {
    for (const f of [a, b]) {
      f.reset();
      f.options.latencyMs = 0;
    }
  });

  it('repeated 429s with Retry-After never open the circuit: the target is skipped for the Retry-After, then used again', async () => {
    const before = await scrape(`${stack.gatewayUrl}/metrics`);
    // THRESHOLD + 1 upstream 429s: as circuit failures they would have opened it.
    for (let round = 1; round <= THRESHOLD + 1; round++) {
      a.failNext(1, 429, { retryAfter: '1' });
      const id = rid('rl');
      const limited = await chat('rl', { id });
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('1');
      expect(limited.body.error).toMatchObject({ code: 'rate_limit_exceeded', message: expect.stringContaining('prov-a/m-rl') });
      expect(hits(a)).toBe(round); // not retried on the same target (maxAttempts is 3)
      expect(await ledgerRow(id)).toMatchObject({ status: 429, error_code: 'rate_limit_exceeded', attempts: 1 });
      if (round === 1) {
        const listed = await (await fetch(`${stack.gatewayUrl}/admin/circuits`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })).json();
        expect((listed as any).backoffs).toContainEqual({ key: `${A}/m-rl`, reason: 'rate_limit', remainingMs: expect.any(Number) });
      }
      // Within the Retry-After: answered at once, without calling the upstream.
      const skipped = await chat('rl', { id: rid('rl-skip') });
      expect(skipped.status).toBe(429);
      expect(Number(skipped.headers.get('retry-after'))).toBe(1);
      expect(hits(a)).toBe(round);
      await sleep(1050);
    }
    const ok = await chat('rl');
    expect(ok.status).toBe(200);
    expect(hits(a)).toBe(THRESHOLD + 2);
    expect((await circuit('prov-a/m-rl'))?.state ?? 'closed').toBe('closed');
    const after = await scrape(`${stack.gatewayUrl}/metrics`);
    expect(delta(before, after, 'gateway_upstream_backoffs_total', { provider: 'prov-a', reason: 'rate_limit' })).toBe(THRESHOLD + 1);
    expect(delta(before, after, 'gateway_upstream_errors_total', { provider: 'prov-a', reason: 'backoff' })).toBe(THRESHOLD + 1);
  });

  it("a 429 without Retry-After is backed off for OpenAI's x-ratelimit-reset-* of the exhausted limit", async () => {
    a.failNext(1, 429, {
      headers: {
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': '1.2s',
        'x-ratelimit-remaining-tokens': '39000',
        'x-ratelimit-reset-tokens': '6ms',
      },
    });
    const limited = await chat('rl-reset');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect((await chat('rl-reset')).status).toBe(429);
    expect(hits(a)).toBe(1);
    await sleep(1250);
    expect((await chat('rl-reset')).status).toBe(200);
    expect(hits(a)).toBe(2);
  });

  it.each([
    ['429 rate limit', 'fo-429', true, (f: FakeProvider) => f.failNext(1, 429, { retryAfter: '30' })],
    ['429 insufficient_quota', 'fo-quota', true, (f: FakeProvider) => f.quotaExhaustedNext(1)],
    [
      '401',
      'fo-401',
      false,
      (f: FakeProvider) =>
        f.failNext(1, 401, {
          body: { error: { message: 'Incorrect API key provided: sk-abc*****wxyz.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } },
        }),
    ],
    [
      '403',
      'fo-403',
      false,
      (f: FakeProvider) =>
        f.failNext(1, 403, {
          body: {
            error: {
              message: 'Country, region, or territory not supported',
              type: 'request_forbidden',
              param: null,
              code: 'unsupported_country_region_territory',
            },
          },
        }),
    ],
  ])('a two-target route fails over on an upstream %s, without retrying the first target', async (_, model, backsOff, inject) => {
    inject(a);
    const id = rid(model);
    const r = await chat(model, { id });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-gateway-provider')).toBe('prov-b');
    expect([hits(a), hits(b)]).toEqual([1, 1]);
    expect(await ledgerRow(id)).toMatchObject({ status: 200, attempts: 2, provider_id: B });
    // A rate-limited or empty account is then skipped; a refused credential is tried again (it costs one fast call).
    const next = await chat(model);
    expect(next.status).toBe(200);
    expect(next.headers.get('x-gateway-provider')).toBe(backsOff ? 'prov-b' : 'prov-a');
    expect(hits(a)).toBe(backsOff ? 1 : 2);
    expect((await circuit(`prov-a/m-${model}`))?.consecutiveFailures ?? 0).toBe(0);
  });

  it("OpenRouter's 402 (out of credits) fails over too", async () => {
    b.quotaExhaustedNext(1);
    const r = await chat('fo-402');
    expect(r.status).toBe(200);
    expect(r.headers.get('x-gateway-provider')).toBe('prov-a');
    expect([hits(b), hits(a)]).toEqual([1, 1]);
  });

  it("a single-target insufficient_quota is a 503 naming the provider and the operator, never the client's own quota code; upstream called once", async () => {
    a.quotaExhaustedNext(3);
    const id = rid('quota');
    const r = await chat('quota-solo', { id });
    expect(r.status).toBe(503);
    expect(r.body.error).toMatchObject({ code: 'upstream_quota_exhausted', type: 'server_error', param: null });
    expect(r.body.error.message).toMatch(
      /^prov-a: the gateway's account with this provider is out of credit or quota \(HTTP 429\)\. This is not your quota or budget: the gateway's operator must/,
    );
    expect(hits(a)).toBe(1);
    expect(await ledgerRow(id)).toMatchObject({ status: 503, error_code: 'upstream_quota_exhausted', attempts: 1 });
    // The SDK sees a server error naming the provider; the target is skipped for UPSTREAM_QUOTA_BACKOFF_MS.
    const sdk = new OpenAI({ apiKey: secret, baseURL: stack.baseURL, maxRetries: 0 });
    const err = await sdk.chat.completions.create({ model: 'quota-solo', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: 'upstream_quota_exhausted', type: 'server_error' });
    expect((err as Error).message).toContain('prov-a');
    expect(hits(a)).toBe(1);
  });

  it("Codex's path (/v1/responses, streamed): an empty provider account is a 503 before the stream starts, not 429 insufficient_quota", async () => {
    a.quotaExhaustedNext(3);
    const r = await post(stack.baseURL, '/responses', { model: 'quota-resp', input: 'hi', stream: true });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('upstream_quota_exhausted');
    expect(r.body.error.type).not.toBe('insufficient_quota');
    expect(hits(a, '/responses')).toBe(1);
  });

  it('a hung stream answers 504 within the first-byte timeout, each target called once', async () => {
    a.hangNext(3);
    b.hangNext(3);
    const id = rid('hang-stream');
    const r = await chat('hang-stream', { stream: true, id });
    expect(r.status).toBe(504);
    expect(r.body.error).toMatchObject({ code: 'upstream_timeout', type: 'timeout_error', message: expect.stringContaining('first-byte') });
    // Two targets, one first-byte timeout each (undici checks its timers about twice a second).
    expect(r.ms).toBeGreaterThanOrEqual(2 * FIRST_BYTE_MS - 100);
    expect(r.ms).toBeLessThan(2 * (FIRST_BYTE_MS + 1100));
    expect([hits(a), hits(b)]).toEqual([1, 1]);
    expect(await ledgerRow(id)).toMatchObject({ status: 504, error_code: 'upstream_timeout', attempts: 2 });
    // A timeout is a circuit failure (unlike a 429).
    expect(await circuit('prov-a/m-hang-s')).toMatchObject({ consecutiveFailures: 1 });
    await Promise.all([a.whenIdle(2000), b.whenIdle(2000)]);
  });

  it('a hung non-stream request answers 504 at its total timeout, not retried on the same target', async () => {
    a.hangNext(3);
    const id = rid('hang-json');
    const r = await chat('hang-json', { id });
    expect(r.status).toBe(504);
    expect(r.body.error).toMatchObject({ code: 'upstream_timeout', message: expect.stringContaining(`total request time of ${TOTAL_MS} ms`) });
    expect(r.ms).toBeGreaterThanOrEqual(TOTAL_MS - 50);
    expect(r.ms).toBeLessThan(TOTAL_MS + 1000);
    expect(hits(a)).toBe(1);
    expect(await ledgerRow(id)).toMatchObject({ status: 504, error_code: 'upstream_timeout', attempts: 1 });
    expect(await circuit('prov-a/m-hang-j')).toMatchObject({ consecutiveFailures: 1 });
    await a.whenIdle(2000);
  });

  it('a non-stream answer may take longer than the stream first-byte timeout; a stream may not', async () => {
    a.options.latencyMs = FIRST_BYTE_MS + 1500;
    const slow = await chat('slow');
    expect(slow.status).toBe(200);
    expect(slow.ms).toBeGreaterThanOrEqual(FIRST_BYTE_MS + 1500);
    const stream = await chat('slow', { stream: true });
    expect(stream.status).toBe(504);
    expect(hits(a)).toBe(2);
    await a.whenIdle(3000);
  });

  withRedis('with Redis, a backoff is shared by every replica, including one started after it', async () => {
    let replica: GatewayReplica | undefined;
    let late: GatewayReplica | undefined;
    try {
      replica = await startGatewayReplica(stack);
      a.failNext(1, 429, { retryAfter: '2' });
      const t0 = Date.now();
      expect((await chat('shared')).status).toBe(429);
      expect(hits(a)).toBe(1);
      await sleep(150); // pub/sub delivery
      const other = await chat('shared', { base: replica.baseURL });
      expect(other.status).toBe(429);
      expect(other.body.error.code).toBe('rate_limit_exceeded');
      expect(Number(other.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(hits(a)).toBe(1);
      // A replica that starts now reads the running backoff back from Redis.
      late = await startGatewayReplica(stack);
      expect((await chat('shared', { base: late.baseURL })).status).toBe(429);
      expect(hits(a)).toBe(1);
      await sleep(Math.max(0, 2050 - (Date.now() - t0)));
      expect((await chat('shared', { base: replica.baseURL })).status).toBe(200);
      expect(hits(a)).toBe(2);
      const s = await scrape(`${replica.gatewayUrl}/metrics`);
      expect(metricValue(s, 'gateway_upstream_errors_total', { provider: 'prov-a', reason: 'backoff' })).toBeGreaterThanOrEqual(1);
    } finally {
      await late?.close();
      await replica?.close();
    }
  });

  withRedis('a shorter backoff from another replica never shortens a longer one in Redis (a replica started later reads the longer)', async () => {
    const key = `test-${randomBytes(4).toString('hex')}/m`;
    const a1 = new RedisTargetBackoff(REDIS!);
    const a2 = new RedisTargetBackoff(REDIS!);
    const redis = new Redis(REDIS!);
    try {
      await Promise.all([a1.start(), a2.start()]);
      a1.hold(key, 30_000, 'rate_limit');
      await eventually(async () => (await redis.pttl(`gw:backoff:${key}`)) > 25_000, 2000, 20);
      a2.hold(key, 1_000, 'rate_limit');
      await new Promise((r) => setTimeout(r, 150));
      expect(await redis.pttl(`gw:backoff:${key}`)).toBeGreaterThan(25_000);
      const late = new RedisTargetBackoff(REDIS!);
      try {
        await late.start();
        expect(late.check(key)?.remainingMs ?? 0).toBeGreaterThan(25_000);
      } finally {
        await late.close();
      }
    } finally {
      await Promise.all([a1.close(), a2.close()]);
      await redis.quit();
    }
  });
});
