import { OpenAIError } from '@gw/common';
import type { ResolvedRoute } from '@gw/routing';
import type { Principal } from '@gw/tenancy';
import { CallContext, ClientGone } from '../pipeline/call-context';
import { CircuitBreaker } from './circuit-breaker';
import { MemoryTargetBackoff } from './target.backoff';
import { UpstreamDispatcher } from './upstream.dispatcher';
import { A, B, CFG, Reply, metrics, setup, upstream } from './upstream.dispatcher.spec-helpers';

describe('UpstreamDispatcher with circuit breakers', () => {
  it('skips a target whose circuit is open and serves from the fallback without calling it', async () => {
    const { calls, send } = setup({ a: [500, 500] });
    for (let i = 0; i < 2; i++) expect((await send().result).target.provider.name).toBe('b');
    expect(calls).toEqual(['a', 'b', 'a', 'b']);
    const { ctx, result } = send();
    expect((await result).target.provider.name).toBe('b');
    expect(calls.slice(4)).toEqual(['b']);
    expect(ctx.attempts).toBe(1);
  });

  it('stops retrying a target as soon as its circuit opens', async () => {
    const { calls, send } = setup({ a: [500, 500, 500] }, [A, B], 3);
    expect((await send().result).target.provider.name).toBe('b');
    expect(calls).toEqual(['a', 'a', 'b']);
  });

  it('a 4xx proves the upstream is up: it does not count as a failure', async () => {
    const { breaker, send } = setup({ a: [400, 400, 400] }, [A]);
    for (let i = 0; i < 3; i++) await expect(send().result).rejects.toMatchObject({ status: 400 });
    expect(breaker.isOpen({ providerId: A.id, provider: 'a', model: 'up' })).toBe(false);
  });

  it('with every circuit open: 503 circuit_open with Retry-After, and no upstream call', async () => {
    const { calls, send } = setup({ a: [Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 502] }, [A]);
    await expect(send().result).rejects.toMatchObject({ status: 502 });
    await expect(send().result).rejects.toMatchObject({ status: 502 });
    const { ctx, result } = send();
    const err = (await result.catch((e: unknown) => e)) as OpenAIError;
    expect(err.getStatus()).toBe(503);
    expect(err.body.error.code).toBe('circuit_open');
    expect(err.headers['retry-after']).toBe('1');
    expect(calls).toEqual(['a', 'a']);
    expect(ctx.target?.provider.name).toBe('a');
  });

  it('a probe abandoned by its client frees the half-open slot', async () => {
    let t = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 10, now: () => t });
    const { client, calls } = upstream({ a: [500, 'hang', 200] });
    const dispatcher = new UpstreamDispatcher(client, metrics, breaker, new MemoryTargetBackoff(), CFG);
    const route: ResolvedRoute = { id: 'r', pattern: 'm', settings: { maxAttempts: 1 }, groups: [[{ provider: A, model: 'up', weight: 1 }]] };
    const call = () => {
      const ctx = new CallContext('req', {} as Principal, 'chat', 'm');
      ctx.route = route;
      return { ctx, result: dispatcher.send(ctx, 'chat', false, () => ({})) };
    };
    await expect(call().result).rejects.toMatchObject({ status: 500 });
    t = 10;
    const probe = call();
    await Promise.resolve();
    probe.ctx.abort.abort(new ClientGone());
    await expect(probe.result).rejects.toBeInstanceOf(ClientGone);
    expect((await call().result).res.statusCode).toBe(200);
    expect(calls).toEqual(['a', 'a', 'a']);
  });

  describe('errors of our own making', () => {
    const halfOpen = (script: Record<string, Reply[]>) => {
      let t = 0;
      const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 10, now: () => t });
      const { client, calls } = upstream(script);
      const dispatcher = new UpstreamDispatcher(client, metrics, breaker, new MemoryTargetBackoff(), CFG);
      const route: ResolvedRoute = { id: 'r', pattern: 'm', settings: { maxAttempts: 3, backoffMs: 1 }, groups: [[{ provider: A, model: 'up', weight: 1 }]] };
      const call = (bodyFor: () => Record<string, unknown> = () => ({})) => {
        const ctx = new CallContext('req', {} as Principal, 'chat', 'm');
        ctx.route = route;
        return dispatcher.send(ctx, 'chat', false, bodyFor);
      };
      return { breaker, calls, call, later: () => (t += 10) };
    };
    const circuit = { providerId: A.id, provider: 'a', model: 'up' };

    it('a body that cannot be built is a 400 and gives a half-open probe slot back (finding 1)', async () => {
      const { breaker, calls, call, later } = halfOpen({ a: [500, 200] });
      await expect(call()).rejects.toMatchObject({ status: 500 });
      expect(breaker.isOpen(circuit)).toBe(true);
      later();
      const err = (await call(() => {
        throw new TypeError("Cannot read properties of null (reading 'type')");
      }).catch((e: unknown) => e)) as OpenAIError;
      expect(err).toBeInstanceOf(OpenAIError);
      expect(err.getStatus()).toBe(400);
      expect(err.body.error.type).toBe('invalid_request_error');
      // The probe slot is free again: the next request is let through and closes the circuit.
      expect((await call()).res.statusCode).toBe(200);
      expect(breaker.isOpen(circuit)).toBe(false);
      expect(calls).toEqual(['a', 'a']);
    });

    it('an exception without a network error code is not retried and not a circuit failure (finding 11)', async () => {
      const { breaker, calls, call, later } = halfOpen({ a: [500, new TypeError('out.replace is not a function'), 200] });
      await expect(call()).rejects.toMatchObject({ status: 500 });
      later();
      await expect(call()).rejects.toThrow('out.replace is not a function');
      expect(calls).toEqual(['a', 'a']);
      // Not counted against the upstream: the probe slot was released, the circuit is half-open, not re-opened.
      expect(breaker.snapshot()[0]).toMatchObject({ state: 'half_open', consecutiveFailures: 1 });
      expect((await call()).res.statusCode).toBe(200);
    });

    it('network errors (undici and errno codes) are still retried and counted', async () => {
      const { breaker, calls, send } = setup(
        { a: [Object.assign(new Error('x'), { code: 'UND_ERR_SOCKET' }), 200, Object.assign(new Error('y'), { code: 'ECONNRESET' }), 200] },
        [A],
        2,
      );
      expect((await send().result).res.statusCode).toBe(200);
      expect((await send().result).res.statusCode).toBe(200);
      expect(calls).toEqual(['a', 'a', 'a', 'a']);
      expect(breaker.snapshot()[0]).toMatchObject({ state: 'closed', lastError: null });
    });

    it('an upstream 401 is a 502 upstream_auth_error, not retried and not a circuit failure (finding 12)', async () => {
      const { breaker, calls, send } = setup({ a: [401, 401] }, [A], 3);
      const err = (await send().result.catch((e: unknown) => e)) as OpenAIError;
      expect(err.getStatus()).toBe(502);
      expect(err.body.error).toMatchObject({ code: 'upstream_auth_error', type: 'server_error' });
      expect(err.body.error.message).toContain("a: the provider rejected the gateway's credential (HTTP 401)");
      expect(calls).toEqual(['a']);
      expect(breaker.isOpen(circuit)).toBe(false);
    });
  });

  it('accept leaves targets out (finding 21: previous_response_id only to native targets)', async () => {
    const { calls } = setup({});
    const { client } = upstream({});
    const dispatcher = new UpstreamDispatcher(client, metrics, new CircuitBreaker({ failureThreshold: 2, cooldownMs: 1000 }), new MemoryTargetBackoff(), CFG);
    const route: ResolvedRoute = {
      id: 'r',
      pattern: 'm',
      settings: {},
      groups: [[{ provider: A, model: 'up', weight: 1 }], [{ provider: B, model: 'up', weight: 1 }]],
    };
    const ctx = new CallContext('req', {} as Principal, 'responses', 'm');
    ctx.route = route;
    const r = await dispatcher.send(
      ctx,
      'responses',
      false,
      () => ({}),
      (t) => t.provider.name === 'b',
    );
    expect(r.target.provider.name).toBe('b');
    expect(calls).toEqual([]);
  });

  describe('429, quota, auth and timeouts (issue 12 point 6)', () => {
    const rateLimited = (retryAfter: string) => ({
      status: 429,
      headers: { 'retry-after': retryAfter },
      body: '{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}',
    });
    const quota = {
      status: 429,
      body: '{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}',
    };
    const circuit = { providerId: A.id, provider: 'a', model: 'up' };
    const timeout = () => Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' });

    it('a 429 backs the target off without touching the circuit; the client gets 429 with Retry-After', async () => {
      const { breaker, backoff, calls, send } = setup({ a: [rateLimited('7'), rateLimited('7'), rateLimited('7')] }, [A], 3);
      const err = (await send().result.catch((e: unknown) => e)) as OpenAIError;
      expect(err.getStatus()).toBe(429);
      expect(err.body.error).toMatchObject({ code: 'rate_limit_exceeded', message: expect.stringContaining('a/up') });
      expect(err.headers['retry-after']).toBe('7');
      expect(calls).toEqual(['a']); // not retried on the same target
      expect(backoff.check('id-a/up')).toMatchObject({ reason: 'rate_limit' });
      // Skipped while backed off: no call, still a 429, never circuit_open.
      for (let i = 0; i < 3; i++) expect(await send().result.catch((e: OpenAIError) => e.body.error.code)).toBe('rate_limit_exceeded');
      expect(calls).toEqual(['a']);
      expect(breaker.isOpen(circuit)).toBe(false);
      expect(breaker.snapshot()).toEqual([]);
    });

    it('x-ratelimit-reset-* sets the backoff when there is no Retry-After; the default when there is nothing', async () => {
      const { backoff, send } = setup(
        {
          a: [{ status: 429, headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '2.5s', 'x-ratelimit-reset-tokens': '90ms' } }],
          b: [429],
        },
        [A, B],
        1,
      );
      const err = (await send().result.catch((e: unknown) => e)) as OpenAIError;
      expect(err.headers['retry-after']).toBe('1'); // b's default 1 s is the shortest
      expect(backoff.check('id-a/up')!.remainingMs).toBeGreaterThan(2000);
      expect(backoff.check('id-b/up')!.remainingMs).toBeLessThanOrEqual(1000);
    });

    it('a 429 fails over to the next target at once', async () => {
      const { calls, send } = setup({ a: [rateLimited('30')] }, [A, B], 3);
      expect((await send().result).target.provider.name).toBe('b');
      expect((await send().result).target.provider.name).toBe('b');
      expect(calls).toEqual(['a', 'b', 'b']);
    });

    it.each([
      ['insufficient_quota', quota],
      ['OpenRouter 402', { status: 402, body: '{"error":{"message":"Insufficient credits","code":402}}' }],
      ['401', { status: 401 }],
      ['403', { status: 403 }],
    ])('%s fails over without a retry on the same target', async (_, reply) => {
      const { breaker, calls, send } = setup({ a: [reply, reply] }, [A, B], 3);
      expect((await send().result).target.provider.name).toBe('b');
      expect(calls).toEqual(['a', 'b']);
      expect(breaker.snapshot().filter((c) => c.consecutiveFailures > 0)).toEqual([]);
    });

    it("a single-target insufficient_quota is a 503 naming the provider, never the client's quota code; then skipped", async () => {
      const { calls, send } = setup({ a: [quota, quota] }, [A], 3);
      for (let i = 0; i < 2; i++) {
        const err = (await send().result.catch((e: unknown) => e)) as OpenAIError;
        expect(err.getStatus()).toBe(503);
        expect(err.body.error).toMatchObject({ code: 'upstream_quota_exhausted', type: 'server_error', message: expect.stringMatching(/^a: .*operator must/) });
      }
      expect(calls).toEqual(['a']);
    });

    it('a timeout is a circuit failure, not retried on the same target; the next target is tried', async () => {
      const { breaker, calls, send } = setup({ a: [timeout()] }, [A, B], 3);
      expect((await send().result).target.provider.name).toBe('b');
      expect(calls).toEqual(['a', 'b']);
      expect(breaker.snapshot().find((c) => c.provider === 'a')).toMatchObject({ consecutiveFailures: 1 });
    });

    it('5xx and connection errors still open the circuit', async () => {
      const { breaker, send } = setup({ a: [503, Object.assign(new Error('reset'), { code: 'ECONNRESET' })] }, [A], 1);
      await expect(send().result).rejects.toMatchObject({ status: 503 });
      await expect(send().result).rejects.toMatchObject({ status: 502 });
      expect(breaker.isOpen(circuit)).toBe(true);
    });
  });
});
