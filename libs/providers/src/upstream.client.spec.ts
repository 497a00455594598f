import type { AppConfig } from '@gw/config';
import { MAX_CONNECT_TIMEOUT_POOLS, UpstreamClient } from './upstream.client';

describe('UpstreamClient pools', () => {
  const cfg = { upstreamConnectTimeoutMs: 10_000, upstreamFirstByteTimeoutMs: 1000, upstreamIdleTimeoutMs: 1000 } as AppConfig;
  // Nothing listens on port 9 of 127.0.0.1 here; the request is never awaited, only its pool is chosen.
  const touch = (c: UpstreamClient, connectTimeout?: number) => void c.request('http://127.0.0.1:9/x', { method: 'GET', connectTimeout }).catch(() => undefined);

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
