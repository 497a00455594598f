import { sha256Hex } from '@gw/common';
import { KeyCache } from './key-cache';

const tenant = { id: 't1', name: 'acme', enabled: true, limits: {} };
const key = (revoked: boolean) => ({
  id: 'k1', name: 'k', prefix: 'sk-gw-abc', tenantId: 't1', keyHash: sha256Hex('secret'), revokedAt: revoked ? new Date() : null,
  allowedModels: null, allowedIps: null, expiresAt: null, limits: {},
});

describe('KeyCache', () => {
  it('a miss read that a reload overtook is not remembered (it could predate a revocation)', async () => {
    let releaseMiss!: () => void;
    const keys = {
      listAllActive: async () => [], // the key was created after the first snapshot, and is revoked by the second
      // the miss read sees the key before the revocation, but answers only after the reload that follows it
      findActiveByHash: () => new Promise((r) => (releaseMiss = () => r(key(false)))),
      touch: async () => undefined,
    };
    const tenants = { list: async () => [tenant], get: async () => tenant };
    const changes = { subscribe: () => () => undefined };
    const cache = new KeyCache(keys as any, tenants as any, changes as any);
    await cache.onApplicationBootstrap();

    const first = cache.lookup('secret');
    await new Promise((r) => setImmediate(r));
    await cache.reload(); // the revocation's reload, started while the miss read was in flight
    releaseMiss();
    // that one request was concurrent with the revocation and gets the answer it read…
    expect((await first).ok).toBe(true);
    // …but the principal was not put into the new snapshot: the next lookup reads again
    keys.findActiveByHash = async () => null as any;
    expect(await cache.lookup('secret')).toEqual({ ok: false, reason: 'unknown' });
    await cache.onApplicationShutdown();
  });

  it('a miss read with no reload meanwhile is remembered (one read per new key)', async () => {
    const find = jest.fn(async () => key(false));
    const keys = { listAllActive: async () => [], findActiveByHash: find, touch: async () => undefined };
    const tenants = { list: async () => [tenant], get: async () => tenant };
    const cache = new KeyCache(keys as any, tenants as any, { subscribe: () => () => undefined } as any);
    await cache.onApplicationBootstrap();
    expect((await cache.lookup('secret')).ok).toBe(true);
    expect((await cache.lookup('secret')).ok).toBe(true);
    expect(find).toHaveBeenCalledTimes(1);
    await cache.onApplicationShutdown();
  });
});
