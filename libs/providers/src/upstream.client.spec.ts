import type { AppConfig } from '@gw/config';
import { EgressDeniedError, EgressPolicy } from './egress.policy';
import { MAX_CONNECT_TIMEOUT_POOLS, UpstreamClient } from './upstream.client';

describe('UpstreamClient pools', () => {
  const cfg = { upstreamConnectTimeoutMs: 10_000, upstreamFirstByteTimeoutMs: 1000, upstreamIdleTimeoutMs: 1000 } as AppConfig;
  // Nothing listens on port 9 of 127.0.0.1 here; the request is never awaited, only its pool is chosen.
  const touch = (c: UpstreamClient, connectTimeout?: number) =>
    void c.request('http://127.0.0.1:9/x', { method: 'GET', connectTimeout }).catch(() => undefined);

  it('reuses one pool per distinct connect timeout, and never more than MAX_CONNECT_TIMEOUT_POOLS besides the default', async () => {
    const c = new UpstreamClient(cfg);
    (c as unknown as { logger: { warn: () => void } }).logger = { warn: () => undefined };
    try {
      touch(c);
      touch(c, 10_000);
      expect(c.poolCount).toBe(1);
      touch(c, 5000);
      touch(c, 5000);
      expect(c.poolCount).toBe(2);
      for (let ms = 1; ms <= 100; ms++) touch(c, ms);
      expect(c.poolCount).toBe(MAX_CONNECT_TIMEOUT_POOLS + 1);
    } finally {
      await c.onApplicationShutdown();
    }
  });
});

describe('UpstreamClient egress checks', () => {
  const cfg = { upstreamConnectTimeoutMs: 2000, upstreamFirstByteTimeoutMs: 2000, upstreamIdleTimeoutMs: 2000 } as AppConfig;

  it('refuses a denied literal or a name resolving to a denied address without connecting, and connects to the checked address', async () => {
    const { createServer } = await import('node:http');
    let connections = 0;
    const server = createServer((_req, res) => res.end('ok'));
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const policy = new EgressPolicy({ deny: `127.0.0.1:${port}`, localAddresses: [] });
    const lookups: string[] = [];
    const resolver = async (h: string) => {
      lookups.push(h);
      if (h === 'evil.test') return [{ address: '169.254.169.254', family: 4 }];
      if (h === 'denied.test') return [{ address: '127.0.0.1', family: 4 }];
      if (h === 'ok.test') return [{ address: '127.0.0.2', family: 4 }];
      throw Object.assign(new Error('no DNS here'), { code: 'ENOTFOUND' });
    };
    const c = new UpstreamClient(cfg, policy, resolver);
    try {
      await expect(c.request(`http://127.0.0.1:${port}/x`, { method: 'GET' })).rejects.toBeInstanceOf(EgressDeniedError);
      await expect(c.request(`http://[::ffff:127.0.0.1]:${port}/x`, { method: 'GET' })).rejects.toMatchObject({ code: 'EGRESS_DENIED' });
      await expect(c.request(`http://denied.test:${port}/x`, { method: 'GET' })).rejects.toMatchObject({
        code: 'EGRESS_DENIED',
        rule: `EGRESS_DENY 127.0.0.1:${port}`,
      });
      // Never tried: the metadata address is refused before any socket exists.
      await expect(c.request('http://evil.test/latest/meta-data', { method: 'GET' })).rejects.toMatchObject({
        code: 'EGRESS_DENIED',
        rule: 'built-in: cloud metadata (169.254.169.254)',
      });
      expect(connections).toBe(0);
      // An allowed answer passes the check and is connected to as resolved (127.0.0.2: nothing listens there).
      await expect(c.request(`http://ok.test:${port}/x`, { method: 'GET' })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      await expect(c.request('http://nowhere.test/x', { method: 'GET' })).rejects.toMatchObject({ code: 'ENOTFOUND' });
      expect(lookups).toEqual(['denied.test', 'evil.test', 'ok.test', 'nowhere.test']);
    } finally {
      await c.onApplicationShutdown();
      await new Promise((r) => server.close(r));
    }
  });
});
