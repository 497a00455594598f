import OpenAI from 'openai';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FakeProvider, Stack, TEST_ADMIN_TOKEN, defaultReplyText, eventually, freePort, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(60_000);

const ROOT = resolve(__dirname, '..');
const CIRCUIT_THRESHOLD = 3;
const CIRCUIT_COOLDOWN_MS = 800;

// Every scenario has an upstream model of its own, so circuit breakers (per provider + model) never
// carry one test's failures into the next.
const A_MODELS = ['gpt-4o-mini', 'm-retry', 'm-fallback', 'm-hang', 'm-idle', 'm-total', 'm-stream', 'm-lb', 'm-circuit', 'm-solo', 'm-pool', 'm-drain'];
const B_MODELS = ['openai/gpt-4o-mini', 'm-lb', 'm-circuit'];

interface SseResult {
  status: number;
  headers: Headers;
  text: string;
  events: any[];
  error?: { message: string; type: string; code: string | null };
  done: boolean;
}

const json = (r: Response): Promise<any> => r.json();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rid = (tag: string) => `${tag}-${randomBytes(6).toString('hex')}`;

/** Reads an SSE response to its end; chat deltas are joined into `text`, an error chunk lands in `error`. */
async function readSse(res: Response, onFirst?: () => void): Promise<SseResult> {
  const out: SseResult = { status: res.status, headers: res.headers, text: '', events: [], done: false };
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let first = true;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (first) {
      first = false;
      onFirst?.();
    }
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) !== -1) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = ev
        .split('\n')
        .find((l) => l.startsWith('data: '))
        ?.slice(6);
      if (data === undefined) continue;
      if (data === '[DONE]') {
        out.done = true;
        continue;
      }
      const j = JSON.parse(data);
      out.events.push(j);
      if (j.error) out.error = j.error;
      out.text += j.choices?.[0]?.delta?.content ?? '';
    }
  }
  return out;
}

/** A listener whose accept queue is full and whose process is stopped: connecting to it hangs (SYNs are dropped). */
async function blackhole(): Promise<{ port: number; close(): void }> {
  const child = spawn(
    process.execPath,
    ['-e', "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>process.stdout.write(s.address().port+'\\n'))"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((r) => child.stdout.once('data', (d) => r(Number(String(d).trim()))));
  process.kill(child.pid!, 'SIGSTOP');
  // Linux queues backlog + 1 completed handshakes; fill them so the gateway's SYN goes unanswered.
  const fillers = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<net.Socket>((r) => {
          const s = net.connect(port, '127.0.0.1', () => r(s));
          s.on('error', () => undefined);
        }),
    ),
  );
  return {
    port,
    close: () => {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
    },
  };
}

/** A TCP relay in front of an upstream that counts the connections the gateway opens to it. */
async function countingRelay(targetPort: number): Promise<{ port: number; accepted: () => number; close(): Promise<void> }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** One request on a new connection: nothing reused from a pool the server may be closing. */
function fresh(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

describe('resilience: retries, fallback, timeouts, circuit breaker, disconnects, limits, graceful shutdown', () => {
  const masterKey = randomBytes(32).toString('base64');
  let stack: Stack;
  let a: FakeProvider;
  let b: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;
  let client: OpenAI;
  const providers: Record<string, string> = {};
  const cleanups: (() => unknown)[] = [];
  let relay: Awaited<ReturnType<typeof countingRelay>>;

  async function provider(name: string, kind: 'openai' | 'openrouter', baseUrl: string): Promise<string> {
    const r = await stack.api('POST', '/admin/providers', { name, kind, baseUrl });
    if (r.status !== 201) throw new Error(`provider ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    providers[name] = r.body.id;
    return r.body.id;
  }

  async function route(modelPattern: string, targets: object[], settings: object = {}): Promise<void> {
    const r = await stack.api('POST', '/admin/routes', { modelPattern, targets, settings });
    if (r.status !== 201) throw new Error(`route ${modelPattern}: ${r.status} ${JSON.stringify(r.body)}`);
  }

  /** A test's name for a request (sent as the client's x-request-id) → the gateway's own id for it. */
  const serverIds = new Map<string, string>();
  const serverId = (id: string): string => serverIds.get(id) ?? id;

  async function chat(model: string, opts: { stream?: boolean; id?: string; signal?: AbortSignal; extra?: object } = {}): Promise<Response> {
    const res = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.secret}`, 'content-type': 'application/json', ...(opts.id ? { 'x-request-id': opts.id } : {}) },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello there' }], stream: opts.stream === true, ...opts.extra }),
      signal: opts.signal,
    });
    if (opts.id) serverIds.set(opts.id, res.headers.get('x-request-id')!);
    return res;
  }

  /** The request's ledger row (by the test's name for it), once the batched writer has put it in. */
  async function ledgerRow(id: string, db: Stack = stack): Promise<any> {
    return eventually(
      async () => {
        await db.flushLedger().catch(() => undefined);
        return (await db.sql('SELECT * FROM usage_records WHERE request_id = $1', [serverId(id)]))[0];
      },
      5000,
      25,
      `the ledger row of ${id}`,
    );
  }

  beforeAll(async () => {
    a = await FakeProvider.start({ flavor: 'openai', models: A_MODELS });
    b = await FakeProvider.start({ flavor: 'openrouter', models: B_MODELS });
    stack = await startStack({
      masterKey,
      circuitFailureThreshold: CIRCUIT_THRESHOLD,
      circuitCooldownMs: CIRCUIT_COOLDOWN_MS,
      shutdownGraceMs: 10_000,
    });
    tenant = await seedTenant(stack, { provider: { kind: 'openai', name: 'prov-a', baseUrl: a.baseUrl }, patterns: ['gpt-4o-mini'] });
    providers['prov-a'] = tenant.providerId;
    const A = tenant.providerId;
    const B = await provider('prov-b', 'openrouter', b.baseUrl);
    const closed = await freePort();
    const dead = await provider('prov-dead', 'openai', `http://127.0.0.1:${closed}/v1`);
    const hole = await blackhole();
    cleanups.push(hole.close);
    const unreachable = await provider('prov-blackhole', 'openai', `http://127.0.0.1:${hole.port}/v1`);
    relay = await countingRelay(a.port);
    cleanups.push(relay.close);
    const pooled = await provider('prov-pooled', 'openai', `http://127.0.0.1:${relay.port}/v1`);

    const fast = { maxAttempts: 2, backoffMs: 10 };
    await route('retry', [{ providerId: A, model: 'm-retry' }], fast);
    // The documented example: OpenAI first, OpenRouter second.
    await route(
      'fallback',
      [
        { providerId: A, model: 'm-fallback', priority: 0 },
        { providerId: B, model: 'openai/gpt-4o-mini', priority: 1 },
      ],
      fast,
    );
    await route(
      'refused',
      [
        { providerId: dead, model: 'm-fallback', priority: 0 },
        { providerId: B, model: 'openai/gpt-4o-mini', priority: 1 },
      ],
      fast,
    );
    await route('hang', [{ providerId: A, model: 'm-hang' }], { ...fast, firstByteTimeoutMs: 300 });
    await route('idle', [{ providerId: A, model: 'm-idle' }], { idleTimeoutMs: 300 });
    await route('total', [{ providerId: A, model: 'm-total' }], { totalTimeoutMs: 600 });
    await route('connect', [{ providerId: unreachable, model: 'gpt-4o-mini' }], { maxAttempts: 1, connectTimeoutMs: 200 });
    await route('stream', [{ providerId: A, model: 'm-stream' }]);
    await route('lb-equal', [
      { providerId: A, model: 'm-lb', weight: 1, priority: 0 },
      { providerId: B, model: 'm-lb', weight: 1, priority: 0 },
    ]);
    await route('lb-zero', [
      { providerId: A, model: 'm-lb', weight: 1, priority: 0 },
      { providerId: B, model: 'm-lb', weight: 0, priority: 0 },
    ]);
    await route(
      'circuit',
      [
        { providerId: A, model: 'm-circuit', priority: 0 },
        { providerId: B, model: 'm-circuit', priority: 1 },
      ],
      { maxAttempts: 1 },
    );
    await route('solo', [{ providerId: A, model: 'm-solo' }], { maxAttempts: 1 });
    await route('pool', [{ providerId: pooled, model: 'm-pool' }]);
    await route('drain', [{ providerId: A, model: 'm-drain' }]);
    client = new OpenAI({ apiKey: tenant.secret, baseURL: stack.baseURL, maxRetries: 0 });
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([a?.close(), b?.close(), ...cleanups.map((c) => c())]);
  });

  beforeEach(() => {
    for (const f of [a, b]) {
      f.reset();
      f.options.chunkDelayMs = 0;
      f.options.latencyMs = 0;
      f.options.streamChunks = 5;
    }
  });

  const hits = (f: FakeProvider) => f.requestsTo('/chat/completions').length;

  describe('retries', () => {
    it('retries a 500 once and succeeds: 2 upstream attempts, both in the ledger', async () => {
      a.failNext(1, 500);
      const id = rid('retry500');
      const res = await chat('retry', { id });
      expect(res.status).toBe(200);
      expect((await json(res)).choices[0].message.content).toBe(defaultReplyText('openai', 'm-retry'));
      expect(hits(a)).toBe(2);
      expect(await ledgerRow(id)).toMatchObject({ status: 200, attempts: 2, provider_id: providers['prov-a'] });
    });

    // Issue 12: a 429 is no longer retried by the gateway (nor a circuit failure): the target is backed off for
    // the Retry-After and the client is told to wait as long (test/upstream-errors.e2e-spec.ts has the rest).
    it('a 429 with Retry-After reaches the client as a retryable 429 with that Retry-After; the SDK waits and its retry is served', async () => {
      a.failNext(1, 429, { retryAfter: '1' });
      const retrying = new OpenAI({ apiKey: tenant.secret, baseURL: stack.baseURL, maxRetries: 1 });
      const r = await retrying.chat.completions.create({ model: 'retry', messages: [{ role: 'user', content: 'hi' }] });
      expect(r.choices[0].message.content).toContain('fake-openai');
      const got = a.requestsTo('/chat/completions');
      expect(got).toHaveLength(2);
      // backoffMs is 10 on this route: only the upstream's Retry-After, passed on to the client, explains a gap this long.
      expect(got[1].at - got[0].at).toBeGreaterThanOrEqual(950);
    });

    it('never retries another 4xx: 1 attempt, the upstream error passed on', async () => {
      a.failNext(1, 400, {
        body: { error: { message: 'Invalid schema for function', type: 'invalid_request_error', param: 'tools', code: 'invalid_function_parameters' } },
      });
      const res = await chat('retry');
      expect(res.status).toBe(400);
      expect((await json(res)).error).toMatchObject({
        type: 'invalid_request_error',
        code: 'invalid_function_parameters',
        message: 'prov-a: Invalid schema for function',
      });
      expect(hits(a)).toBe(1);
    });
  });

  describe('fallback', () => {
    it('falls back to the second target when every attempt on the first fails; header and ledger name it', async () => {
      a.failNext(2, 503);
      const id = rid('fallback');
      const res = await chat('fallback', { id });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-gateway-provider')).toBe('prov-b');
      expect(res.headers.get('x-gateway-target')).toBe('prov-b/openai/gpt-4o-mini');
      expect((await json(res)).choices[0].message.content).toContain('fake-openrouter');
      expect(hits(a)).toBe(2);
      expect(hits(b)).toBe(1);
      expect(b.requestsTo('/chat/completions')[0].body.model).toBe('openai/gpt-4o-mini');
      expect(await ledgerRow(id)).toMatchObject({ status: 200, attempts: 3, provider_id: providers['prov-b'], upstream_model: 'openai/gpt-4o-mini' });
    });

    it('falls back when the first provider refuses connections', async () => {
      const id = rid('refused');
      const res = await chat('refused', { id });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-gateway-provider')).toBe('prov-b');
      expect(hits(b)).toBe(1);
      expect(await ledgerRow(id)).toMatchObject({ status: 200, attempts: 3, provider_id: providers['prov-b'] });
    });
  });

  describe('timeouts: each a 504 and a ledger row', () => {
    // Issue 12: a timeout is no longer retried on the same target (it was: 2 calls, twice the wait).
    it('first byte: a hanging upstream is a 504, not retried on the same target; its request is closed', async () => {
      a.hangNext(2);
      const id = rid('hang');
      const t0 = Date.now();
      const res = await chat('hang', { id });
      expect(res.status).toBe(504);
      expect((await json(res)).error).toMatchObject({ code: 'upstream_timeout', type: 'timeout_error', message: expect.stringContaining('first-byte') });
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(hits(a)).toBe(1);
      await a.whenIdle(2000);
      expect(await ledgerRow(id)).toMatchObject({ status: 504, error_code: 'upstream_timeout', attempts: 1 });
    });

    it('connect: an upstream that never completes the handshake is a 504 within the route connect timeout', async () => {
      const id = rid('connect');
      const t0 = Date.now();
      const res = await chat('connect', { id });
      expect(res.status).toBe(504);
      expect((await json(res)).error).toMatchObject({ code: 'upstream_timeout', message: expect.stringContaining('connecting to prov-blackhole') });
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(await ledgerRow(id)).toMatchObject({ status: 504, error_code: 'upstream_timeout', attempts: 1 });
    });

    it('idle: a stream that stalls after its first chunk ends with a readable error chunk', async () => {
      a.options.chunkDelayMs = 5000;
      const id = rid('idle');
      const out = await readSse(await chat('idle', { stream: true, id }));
      expect(out.status).toBe(200);
      expect(out.events.length).toBeGreaterThanOrEqual(1);
      expect(out.error).toMatchObject({ code: 'upstream_timeout', type: 'timeout_error', message: expect.stringContaining('idle') });
      expect(out.done).toBe(false);
      await a.whenIdle(2000);
      expect(await ledgerRow(id)).toMatchObject({ status: 504, error_code: 'upstream_timeout', streamed: true });
    });

    it('total: the route budget cuts a long stream (and a slow non-stream answer)', async () => {
      a.options.chunkDelayMs = 150;
      a.options.streamChunks = 20;
      const id = rid('total');
      const out = await readSse(await chat('total', { stream: true, id }));
      expect(out.text.length).toBeGreaterThan(0);
      expect(out.error).toMatchObject({ code: 'upstream_timeout', message: expect.stringContaining('600 ms') });
      const row = await ledgerRow(id);
      expect(row).toMatchObject({ status: 504, error_code: 'upstream_timeout', streamed: true });
      expect(row.output_tokens).toBeGreaterThan(0);
      expect(row.input_tokens).toBeGreaterThan(0);

      a.options.latencyMs = 3000;
      const res = await chat('total');
      expect(res.status).toBe(504);
      expect((await json(res)).error.code).toBe('upstream_timeout');
      await a.whenIdle(2000);
    });
  });

  describe('streams cut short', () => {
    it('a client disconnect aborts the upstream at once and the ledger keeps what was used (499)', async () => {
      a.options.chunkDelayMs = 200;
      a.options.streamChunks = 20;
      const id = rid('gone');
      const ac = new AbortController();
      const res = await chat('stream', { stream: true, id, signal: ac.signal });
      const reader = res.body!.getReader();
      let got = '';
      while (!got.includes('"content":"H')) got += new TextDecoder().decode((await reader.read()).value);
      expect(a.openConnections()).toBe(1);
      ac.abort();
      // The upstream stream had ~4 s left: only an immediate abort gets it closed this soon.
      await a.whenIdle(1000);
      const row = await ledgerRow(id);
      expect(row).toMatchObject({ status: 499, error_code: 'client_closed_request', streamed: true });
      expect(row.input_tokens).toBeGreaterThan(0);
      expect(row.output_tokens).toBeGreaterThan(0);
    });

    it('an upstream that drops mid-stream ends the stream with an error chunk, and it is metered', async () => {
      a.dropMidStreamNext(1, 3);
      const id = rid('drop');
      const out = await readSse(await chat('stream', { stream: true, id }));
      expect(out.status).toBe(200);
      expect(out.text.length).toBeGreaterThan(0);
      expect(out.error).toMatchObject({ code: 'stream_error', type: 'server_error', message: expect.stringContaining('prov-a') });
      expect(hits(a)).toBe(1); // nothing after the first byte is retried
      const row = await ledgerRow(id);
      expect(row).toMatchObject({ status: 502, error_code: 'stream_error', streamed: true });
      expect(row.output_tokens).toBeGreaterThan(0);
    });

    it('the SDK surfaces that error chunk as an error', async () => {
      a.dropMidStreamNext(1, 2);
      const stream = await client.chat.completions.create({ model: 'stream', messages: [{ role: 'user', content: 'hi' }], stream: true });
      await expect(
        (async () => {
          for await (const _ of stream) {
            /* drain */
          }
        })(),
      ).rejects.toThrow(/stream failed/);
    });
  });

  describe('request body limit', () => {
    it('a long Codex-sized history (8 MB) fits the default limit', async () => {
      const history = Array.from({ length: 2000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'x'.repeat(4000) }));
      const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: history as any });
      expect(r.choices[0].message.content).toContain('fake-openai');
    });

    it('a body over the limit (50mb) is a 413 in the OpenAI shape, before anything is forwarded', async () => {
      const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(51 * 1024 * 1024) }] });
      const res = await fetch(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tenant.secret}`, 'content-type': 'application/json' },
        body,
      });
      expect(res.status).toBe(413);
      expect((await json(res)).error).toEqual({
        message: expect.stringContaining('larger than'),
        type: 'invalid_request_error',
        param: null,
        code: 'request_too_large',
      });
      expect(hits(a)).toBe(0);
    });
  });

  describe('connection pooling', () => {
    it('sequential requests reuse one kept-alive upstream connection', async () => {
      const before = relay.accepted();
      for (let i = 0; i < 10; i++) {
        const r = await client.chat.completions.create({ model: 'pool', messages: [{ role: 'user', content: `n${i}` }] });
        expect(r.choices[0].message.content).toContain('m-pool');
      }
      await readSse(await chat('pool', { stream: true }));
      expect(hits(a)).toBe(11);
      expect(relay.accepted() - before).toBeLessThanOrEqual(2);
    });
  });

  describe('load balancing', () => {
    async function spread(model: string, n: number): Promise<Record<string, number>> {
      const by: Record<string, number> = {};
      for (let i = 0; i < n; i += 10) {
        const batch = await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => chat(model)));
        for (const r of batch) {
          expect(r.status).toBe(200);
          const p = r.headers.get('x-gateway-provider')!;
          by[p] = (by[p] ?? 0) + 1;
          await r.arrayBuffer();
        }
      }
      return by;
    }

    it('weights 1:1 spread traffic over both targets', async () => {
      const by = await spread('lb-equal', 40);
      expect(by['prov-a']).toBeGreaterThanOrEqual(5);
      expect(by['prov-b']).toBeGreaterThanOrEqual(5);
      expect(hits(a) + hits(b)).toBe(40);
    });

    it('weights 1:0 send everything to the first', async () => {
      const by = await spread('lb-zero', 40);
      expect(by).toEqual({ 'prov-a': 40 });
      expect(hits(b)).toBe(0);
    });
  });

  describe('circuit breaker', () => {
    const gatewayAdmin = (path: string, token = TEST_ADMIN_TOKEN) => fetch(`${stack.gatewayUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });

    it(`opens after ${CIRCUIT_THRESHOLD} failures: the next request skips the target; half-opens after the cool-down and closes on a good probe`, async () => {
      a.failNext(CIRCUIT_THRESHOLD, 500);
      for (let i = 0; i < CIRCUIT_THRESHOLD; i++) {
        const r = await chat('circuit');
        expect(r.headers.get('x-gateway-provider')).toBe('prov-b');
        await r.arrayBuffer();
      }
      expect(hits(a)).toBe(CIRCUIT_THRESHOLD);

      const id = rid('open');
      const skipped = await chat('circuit', { id });
      expect(skipped.status).toBe(200);
      expect(skipped.headers.get('x-gateway-provider')).toBe('prov-b');
      expect(hits(a)).toBe(CIRCUIT_THRESHOLD); // A was not called at all
      expect(hits(b)).toBe(CIRCUIT_THRESHOLD + 1);
      expect(await ledgerRow(id)).toMatchObject({ attempts: 1, provider_id: providers['prov-b'] });

      const open = await json(await gatewayAdmin('/admin/circuits'));
      expect(open).toMatchObject({ object: 'list', failureThreshold: CIRCUIT_THRESHOLD, cooldownMs: CIRCUIT_COOLDOWN_MS });
      expect(open.data.find((c: any) => c.target === 'prov-a/m-circuit')).toMatchObject({
        provider: 'prov-a',
        providerId: providers['prov-a'],
        model: 'm-circuit',
        state: 'open',
        consecutiveFailures: CIRCUIT_THRESHOLD,
        lastError: expect.stringContaining('prov-a'),
      });
      const metrics = await (await fetch(`${stack.gatewayUrl}/metrics`)).text();
      expect(metrics).toMatch(/gateway_circuit_state\{[^}]*target="prov-a\/m-circuit"[^}]*state="open"[^}]*\} 1/);

      await sleep(CIRCUIT_COOLDOWN_MS + 50);
      const probe = await chat('circuit');
      expect(probe.headers.get('x-gateway-provider')).toBe('prov-a');
      expect(hits(a)).toBe(CIRCUIT_THRESHOLD + 1);
      const closed = await json(await gatewayAdmin('/admin/circuits'));
      expect(closed.data.find((c: any) => c.target === 'prov-a/m-circuit')).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    });

    it('with no fallback left, an open circuit answers 503 at once with Retry-After, without calling the upstream', async () => {
      a.failNext(CIRCUIT_THRESHOLD, 502);
      for (let i = 0; i < CIRCUIT_THRESHOLD; i++) expect((await chat('solo')).status).toBe(502);
      const id = rid('solo');
      const res = await chat('solo', { id });
      expect(res.status).toBe(503);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await json(res)).error).toMatchObject({ code: 'circuit_open', type: 'server_error', message: expect.stringContaining('prov-a/m-solo') });
      expect(hits(a)).toBe(CIRCUIT_THRESHOLD);
      expect(await ledgerRow(id)).toMatchObject({ status: 503, error_code: 'circuit_open', attempts: 0 });
    });

    it('circuit state needs the admin token', async () => {
      expect((await gatewayAdmin('/admin/circuits', tenant.secret)).status).toBe(401);
      expect((await fetch(`${stack.gatewayUrl}/admin/circuits`)).status).toBe(401);
    });
  });

  describe('graceful shutdown', () => {
    let built: string;

    beforeAll(() => {
      // A private build (not dist/, which other runs may be rebuilding): swc, well under a second.
      built = mkdtempSync(join(tmpdir(), 'gw-build-'));
      const r = spawnSync(process.execPath, ['node_modules/@swc/cli/bin/swc.js', 'apps', 'libs', '-d', built, '--ignore', '**/*.spec.ts', '-q'], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
      symlinkSync(join(ROOT, 'node_modules'), join(built, 'node_modules'), 'dir');
    });

    afterAll(() => {
      if (built) rmSync(built, { recursive: true, force: true });
    });

    it('SIGTERM on the real gateway process: streams within the grace period finish, the rest end with an error event; every one is metered; exit 0', async () => {
      const port = await freePort();
      const child: ChildProcess = spawn(process.execPath, [join(built, 'apps/gateway/src/main.js')], {
        cwd: built,
        env: {
          PATH: process.env.PATH,
          DATABASE_URL: stack.dbUrl,
          MASTER_KEY: masterKey,
          ADMIN_TOKEN: TEST_ADMIN_TOKEN,
          HOST: '127.0.0.1',
          GATEWAY_PORT: String(port),
          LOG_LEVEL: 'error',
          LEDGER_FLUSH_MS: '5000', // rows must be flushed by the shutdown itself
          SHUTDOWN_GRACE_MS: '2500',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      child.stdout!.resume();
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      try {
        const url = `http://127.0.0.1:${port}`;
        const ready = await eventually(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, 20_000, 100);
        expect(ready).toBe(true);

        a.options.chunkDelayMs = 250;
        a.options.streamChunks = 16;
        // Two short replies (~1.3 s) finish inside the 2.5 s grace period; two long ones (~5 s) do not.
        const texts = ['ok', 'ok', undefined, undefined];
        const ids = texts.map((_, i) => rid(`sigterm${i}`));
        const results: Promise<SseResult>[] = [];
        for (let i = 0; i < texts.length; i++) {
          a.script({ text: texts[i] });
          const res = await fetch(`${url}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${tenant.secret}`, 'content-type': 'application/json', 'x-request-id': ids[i] },
            body: JSON.stringify({ model: 'drain', messages: [{ role: 'user', content: 'hi' }], stream: true }),
          });
          expect(res.status).toBe(200);
          serverIds.set(ids[i], res.headers.get('x-request-id')!);
          let first!: () => void;
          const started = new Promise<void>((r) => (first = r));
          results.push(readSse(res, first));
          await started;
        }
        child.kill('SIGTERM');
        const out = await Promise.all(results);
        for (const r of out.slice(0, 2)) {
          expect(r).toMatchObject({ text: 'ok', done: true });
          expect(r.error).toBeUndefined();
        }
        for (const r of out.slice(2)) {
          expect(r.text.length).toBeGreaterThan(0);
          expect(r.error).toMatchObject({ code: 'gateway_shutting_down', type: 'server_error' });
        }
        expect(await exited).toBe(0);
        // The child flushed its ledger on the way out (its 5 s flush timer never fired).
        const rows = await stack.sql('SELECT request_id, status, error_code, streamed, output_tokens FROM usage_records WHERE request_id = ANY($1)', [
          ids.map(serverId),
        ]);
        const byId = Object.fromEntries(rows.map((r: any) => [r.request_id, r]));
        expect(rows).toHaveLength(4);
        expect(byId[serverId(ids[0])]).toMatchObject({ status: 200, error_code: null, streamed: true });
        expect(byId[serverId(ids[1])]).toMatchObject({ status: 200, error_code: null, streamed: true });
        expect(byId[serverId(ids[2])]).toMatchObject({ status: 503, error_code: 'gateway_shutting_down', streamed: true });
        expect(byId[serverId(ids[3])].output_tokens).toBeGreaterThan(0);
        await a.whenIdle(2000);
      } catch (e) {
        if (stderr) process.stderr.write(`gateway child stderr:\n${stderr}\n`);
        throw e;
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });

    // Last in the file: it closes this stack's gateway (afterAll's stack.close() then finds it closed).
    it('in process: 20 open streams all finish during the drain, readiness is 503 meanwhile, and exactly 20 rows are written', async () => {
      a.options.chunkDelayMs = 60;
      a.options.streamChunks = 16;
      const ids = Array.from({ length: 20 }, (_, i) => rid(`drain${i}`));
      const results: Promise<SseResult>[] = [];
      await Promise.all(
        ids.map(async (id) => {
          const res = await chat('drain', { stream: true, id });
          let first!: () => void;
          const started = new Promise<void>((r) => (first = r));
          results.push(readSse(res, first));
          await started;
        }),
      );
      expect(a.openConnections()).toBe(20);

      const closing = stack.gateway.close();
      await sleep(20);
      const ready = await fresh(`${stack.gatewayUrl}/readyz`);
      expect(ready).toMatchObject({ status: 503, json: { status: 'draining' } });
      const refused = await fresh(`${stack.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tenant.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'drain', messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(refused.status).toBe(503);
      expect(refused.headers.connection).toBe('close');
      expect(refused.json.error).toMatchObject({ code: 'gateway_shutting_down', type: 'server_error' });

      const out = await Promise.all(results);
      for (const r of out) {
        expect(r).toMatchObject({ text: defaultReplyText('openai', 'm-drain'), done: true });
        expect(r.error).toBeUndefined();
      }
      await closing;
      // The drain ran before the ledger's own shutdown flush: every row made it, none twice.
      const rows = await stack.sql('SELECT status, count(*)::int AS n FROM usage_records WHERE request_id = ANY($1) GROUP BY status', [ids.map(serverId)]);
      expect(rows).toEqual([{ status: 200, n: 20 }]);
      await expect(fresh(`${stack.gatewayUrl}/healthz`)).rejects.toThrow(/ECONNREFUSED/);
    });
  });
});
