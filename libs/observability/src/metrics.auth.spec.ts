import type { NextFunction, Request, Response } from 'express';
import { isLoopback, metricsAuth } from './metrics.auth';

/** Runs the middleware for a peer address and headers; returns what it passed to next(). */
function run(token: string | undefined, remoteAddress: string, authorization?: string, extra: Record<string, string> = {}): unknown {
  let passed: unknown = 'not called';
  const req = { socket: { remoteAddress }, headers: { ...(authorization ? { authorization } : {}), ...extra } } as unknown as Request;
  const res = { setHeader: () => undefined } as unknown as Response;
  metricsAuth(token)(req, res, ((e?: unknown) => (passed = e)) as NextFunction);
  return passed;
}

describe('metricsAuth', () => {
  it.each(['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1'])('without a token, %s (loopback) is served', (addr) => {
    expect(isLoopback(addr)).toBe(true);
    expect(run(undefined, addr)).toBeUndefined();
  });

  it.each(['10.0.0.5', '192.168.1.2', '::ffff:10.1.2.3', '2001:db8::1', '1127.0.0.1', ''])('without a token, %j is refused with 403', (addr) => {
    expect(isLoopback(addr)).toBe(false);
    const e = run(undefined, addr, 'Bearer whatever-it-sends') as { getStatus(): number; body: { error: { code: string } } };
    expect(e.getStatus()).toBe(403);
    expect(e.body.error.code).toBe('metrics_loopback_only');
  });

  it.each<Record<string, string>>([{ 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.9' }, { 'x-real-ip': '203.0.113.9' }])(
    'without a token, loopback relayed by a local proxy (%j) is refused',
    (headers) => {
      const e = run(undefined, '127.0.0.1', undefined, headers) as { getStatus(): number };
      expect(e.getStatus()).toBe(403);
    },
  );

  it('with a token, any address needs it, loopback included', () => {
    const token = 'metrics-token-0123456789';
    expect((run(token, '127.0.0.1') as { getStatus(): number }).getStatus()).toBe(401);
    expect((run(token, '10.0.0.5', 'Bearer nope') as { getStatus(): number }).getStatus()).toBe(401);
    expect(run(token, '10.0.0.5', `Bearer ${token}`)).toBeUndefined();
  });
});
