import { sha256Hex } from '@gw/common';
import type { ActiveKeyRow } from './api-key.repository';
import { KeyCache } from './key-cache';

const row = (secret: string, over: Partial<ActiveKeyRow> = {}): ActiveKeyRow => ({
  id: `id-${secret}`,
  tenant_id: 't1',
  name: 'k',
  prefix: secret.slice(0, 12),
  key_hash: sha256Hex(secret),
  allowed_models: null,
  allowed_ips: null,
  limits: {},
  expires_at: null,
  tenant_name: 'acme',
  tenant_limits: { requestsPerMinute: 5 },
  ...over,
});

/** A repository whose table is `rows`, streamed row by row; counts every read. */
function fakeRepo(rows: ActiveKeyRow[]) {
  const repo = {
    rows,
    loads: 0,
    /** Set to make the next load stop after its first two rows until released. */
    gate: undefined as Promise<void> | undefined,
    fail: false,
    async forEachActive(onRow: (r: ActiveKeyRow) => void) {
      repo.loads++;
      if (repo.fail) throw new Error('database unreachable');
      const snapshot = [...repo.rows];
      for (let i = 0; i < snapshot.length; i++) {
        onRow(snapshot[i]);
        if (i === 1 && repo.gate) await repo.gate;
      }
    },
    touch: jest.fn(async () => undefined),
  };
  return repo;
}

const noFeed = { subscribe: () => () => undefined } as any;

describe('KeyCache', () => {
  it('answers from the loaded set only: a miss is unknown and reads nothing', async () => {
    const repo = fakeRepo([row('sk-a'), row('sk-b'), row('sk-c')]);
    const cache = new KeyCache(repo as any, noFeed);
    await cache.onApplicationBootstrap();
    expect(cache.ready).toBe(true);
    const a = cache.lookup('sk-a');
    expect(a).toMatchObject({ ok: true, principal: { keyId: 'id-sk-a', tenantId: 't1', tenantName: 'acme', tenantLimits: { requestsPerMinute: 5 } } });
    expect(cache.lookup('sk-c').ok).toBe(true);
    for (let i = 0; i < 1000; i++) expect(cache.lookup(`sk-unknown-${i}`)).toEqual({ ok: false, reason: 'unknown' });
    expect(repo.loads).toBe(1);
    expect(cache.stats()).toMatchObject({ keys: 3, loads: 1 });
    await cache.onApplicationShutdown();
  });

  it('is not ready (every lookup not_ready) until a load succeeds; the failed load is retried', async () => {
    const repo = fakeRepo([row('sk-a')]);
    repo.fail = true;
    const cache = new KeyCache(repo as any, noFeed);
    await cache.onApplicationBootstrap();
    expect(cache.ready).toBe(false);
    expect(cache.lookup('sk-a')).toEqual({ ok: false, reason: 'not_ready' });
    repo.fail = false;
    await cache.reload();
    expect(cache.ready).toBe(true);
    expect(cache.lookup('sk-a').ok).toBe(true);
    // A later failed reload keeps the last good set (and readiness).
    repo.fail = true;
    await cache.reload();
    expect(cache.lookup('sk-a').ok).toBe(true);
    await cache.onApplicationShutdown();
  });

  it('refuses an expired key by the clock, without a reload', async () => {
    const soon = new Date(Date.now() + 150);
    const repo = fakeRepo([row('sk-past', { expires_at: new Date(Date.now() - 1000) }), row('sk-soon', { expires_at: soon })]);
    const cache = new KeyCache(repo as any, noFeed);
    await cache.onApplicationBootstrap();
    expect(cache.lookup('sk-past')).toEqual({ ok: false, reason: 'expired' });
    expect(cache.lookup('sk-soon').ok).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(cache.lookup('sk-soon')).toEqual({ ok: false, reason: 'expired' });
    expect(repo.loads).toBe(1);
    await cache.onApplicationShutdown();
  });

  it('swaps the whole set at once: during a reload lookups see the old set, after it the new one', async () => {
    const repo = fakeRepo([row('sk-a'), row('sk-b'), row('sk-c'), row('sk-d')]);
    const cache = new KeyCache(repo as any, noFeed);
    await cache.onApplicationBootstrap();
    // sk-d is revoked and sk-e created; the reload stops after its first two rows (sk-a, sk-b)
    repo.rows = [row('sk-a'), row('sk-b'), row('sk-c'), row('sk-e')];
    let release!: () => void;
    repo.gate = new Promise((r) => (release = r));
    const reloading = cache.reload();
    await new Promise((r) => setImmediate(r));
    expect(cache.lookup('sk-c').ok).toBe(true); // not yet in the half-built set, but in the old one
    expect(cache.lookup('sk-d').ok).toBe(true);
    expect(cache.lookup('sk-e').ok).toBe(false);
    release();
    await reloading;
    expect(cache.lookup('sk-c').ok).toBe(true);
    expect(cache.lookup('sk-d')).toEqual({ ok: false, reason: 'unknown' });
    expect(cache.lookup('sk-e').ok).toBe(true);
    await cache.onApplicationShutdown();
  });

  it('reloads on a change-feed event', async () => {
    let listener!: () => unknown;
    const feed = { subscribe: (l: () => unknown) => ((listener = l), () => undefined) };
    const repo = fakeRepo([]);
    const cache = new KeyCache(repo as any, feed as any);
    await cache.onApplicationBootstrap();
    expect(cache.lookup('sk-new').ok).toBe(false);
    repo.rows = [row('sk-new')];
    await listener();
    expect(cache.lookup('sk-new').ok).toBe(true);
    await cache.onApplicationShutdown();
  });

  it('holds 100k keys: every one found, tenants shared', async () => {
    const n = 100_000;
    const rows = Array.from({ length: n }, (_, i) => row(`sk-gw-${i}`, { tenant_id: `t${i % 10}`, tenant_name: `tenant-${i % 10}`, tenant_limits: {} }));
    const repo = fakeRepo(rows);
    const cache = new KeyCache(repo as any, noFeed);
    const t0 = performance.now();
    await cache.onApplicationBootstrap();
    const ms = performance.now() - t0;
    expect(cache.stats().keys).toBe(n);
    for (let i = 0; i < n; i += 997) expect(cache.lookup(`sk-gw-${i}`).ok).toBe(true);
    const a = cache.lookup('sk-gw-3');
    const b = cache.lookup('sk-gw-13');
    expect(a.ok && b.ok && a.principal.tenantLimits === b.principal.tenantLimits).toBe(true);
    // generous: about 0.3 s on a developer machine (the fake does no I/O; the sha256 of the fixture is most of it)
    expect(ms).toBeLessThan(10_000);
    await cache.onApplicationShutdown();
  });

  it('records which keys were used and flushes them on shutdown', async () => {
    const repo = fakeRepo([row('sk-a'), row('sk-b')]);
    const cache = new KeyCache(repo as any, noFeed);
    await cache.onApplicationBootstrap();
    cache.lookup('sk-a');
    cache.lookup('sk-a');
    await cache.onApplicationShutdown();
    expect(repo.touch).toHaveBeenCalledWith(['id-sk-a']);
  });
});
