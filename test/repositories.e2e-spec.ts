import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  ApiKeyEntity, AuditEntryEntity, AuditRepository, DatabaseLock, DatabaseRepository, ENTITIES, MIGRATIONS, PriceEntity, ProviderEntity, RouteEntity,
  SettingEntity, SettingsRepository, TenantEntity, UsageRecordEntity, runMigrations, startEmbeddedPostgres,
} from '@gw/db';
import { PriceRepository, UsageRepository, UsageRow } from '@gw/metering';
import { ProviderRepository } from '@gw/providers';
import { RouteRepository } from '@gw/routing';
import { ApiKeyRepository, TenantRepository } from '@gw/tenancy';
import { createTestDatabase } from '@gw/testing';

/**
 * The repositories against a real, migrated database (a fresh PGlite directory, or a database of its own on
 * TEST_DATABASE_URL), without the apps around them: what each one's SQL does, tenant isolation included.
 */
describe('repositories', () => {
  let ds: DataSource;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const own = await createTestDatabase('gw_repos');
    const dir = own ? undefined : mkdtempSync(join(tmpdir(), 'gw-repos-'));
    const url = own?.url ?? (await startEmbeddedPostgres(dir!)).url;
    ds = new DataSource({ type: 'postgres', url, entities: ENTITIES, migrations: MIGRATIONS, synchronize: false, logging: ['error'] });
    await ds.initialize();
    await runMigrations(ds, { log: () => undefined } as never);
    cleanup = async () => {
      await ds.destroy();
      if (own) await own.drop();
      else {
        await (await startEmbeddedPostgres(dir!)).stop();
        rmSync(dir!, { recursive: true, force: true });
      }
    };
  }, 120_000);

  afterAll(async () => cleanup?.());

  const tenants = () => new TenantRepository(ds.getRepository(TenantEntity));
  const keys = () => new ApiKeyRepository(ds.getRepository(ApiKeyEntity));

  describe('UsageRepository', () => {
    const usage = () => new UsageRepository(ds.getRepository(UsageRecordEntity));
    const A = randomUUID();
    const B = randomUUID();
    const KA1 = randomUUID();
    const KA2 = randomUUID();
    const KB1 = randomUUID();
    let n = 0;
    const row = (over: Partial<UsageRow>): UsageRow => ({
      requestId: `req_${++n}_${randomUUID()}`, clientRequestId: null, tenantId: A, keyId: KA1, routeId: null, providerId: null,
      endpoint: 'chat', requestedModel: 'gpt-4o', upstreamModel: null, status: 200, errorCode: null, inputTokens: 10, outputTokens: 5,
      cachedTokens: 0, costUsd: 0.25, latencyMs: 100, ttfbMs: null, streamed: false, attempts: 1,
      startedAt: new Date('2026-03-10T12:00:00Z'), finishedAt: new Date('2026-03-10T12:00:01Z'), ...over,
    });

    it('inserts a batch in one go; the same ids again are skipped, and the returning form names only the new ones', async () => {
      const r = usage();
      const t = randomUUID();
      const [a, b, c] = [row({ tenantId: t }), row({ tenantId: t }), row({ tenantId: t })];
      await r.insertBatch([a, b]);
      await r.insertBatch([a, b]);
      expect(await r.insertBatchReturningNew([b, c])).toEqual([c.requestId]);
      expect(await r.insertBatchReturningNew([a, b, c])).toEqual([]);
      const [total] = await r.report({ tenantId: t }, {});
      expect(total).toMatchObject({ requests: 3, inputTokens: 30, outputTokens: 15, costUsd: 0.75 });
      // A retried row never overwrites the first one's values.
      await r.insertBatch([{ ...a, costUsd: 99 }]);
      expect((await r.report({ tenantId: t }, {}))[0].costUsd).toBe(0.75);
      await r.insertBatch([]);
      expect(await r.insertBatchReturningNew([])).toEqual([]);
    });

    it('stores the columns as given: nulls, numerics at 1e-8, client ids apart from request ids', async () => {
      const t = randomUUID();
      const x = row({ tenantId: t, keyId: null, clientRequestId: 'client-1', costUsd: 0.12345678, latencyMs: null, ttfbMs: 7, streamed: true, status: 429, errorCode: 'rate_limited' });
      await usage().insertBatch([x]);
      const [stored] = await ds.query(`SELECT * FROM usage_records WHERE request_id = $1`, [x.requestId]);
      expect(stored).toMatchObject({ tenant_id: t, key_id: null, client_request_id: 'client-1', latency_ms: null, ttfb_ms: 7, streamed: true, status: 429, error_code: 'rate_limited' });
      expect(Number(stored.cost_usd)).toBe(0.12345678);
    });

    it('refuses a row the columns cannot hold with a data exception (what the writer splits batches on)', async () => {
      await expect(usage().insertBatch([row({ tenantId: 'not-a-uuid' })])).rejects.toMatchObject({ code: expect.stringMatching(/^22/) });
    });

    describe('reports and spend', () => {
      beforeAll(async () => {
        await usage().insertBatch([
          row({ tenantId: A, keyId: KA1, requestedModel: 'gpt-4o', costUsd: 1, startedAt: new Date('2026-03-10T08:00:00Z') }),
          row({ tenantId: A, keyId: KA1, requestedModel: 'gpt-4o-mini', costUsd: 0.5, status: 500, startedAt: new Date('2026-03-09T23:59:59Z') }),
          row({ tenantId: A, keyId: KA2, requestedModel: 'gpt-4o', costUsd: 2, cachedTokens: 3, startedAt: new Date('2026-03-01T00:00:00Z') }),
          row({ tenantId: A, keyId: null, requestedModel: 'gpt-4o', costUsd: 0.125, startedAt: new Date('2026-03-10T00:00:00Z') }),
          // Outside March: before it, and at the month's end (excluded: [start, end)).
          row({ tenantId: A, keyId: KA1, costUsd: 100, startedAt: new Date('2026-02-28T23:59:59Z') }),
          row({ tenantId: A, keyId: KA1, costUsd: 200, startedAt: new Date('2026-04-01T00:00:00Z') }),
          // Another tenant's, in the same period.
          row({ tenantId: B, keyId: KB1, costUsd: 7, startedAt: new Date('2026-03-10T09:00:00Z') }),
        ]);
      });

      const march = { from: new Date('2026-03-01T00:00:00Z'), to: new Date('2026-04-01T00:00:00Z') };

      it('groups by day (UTC) and model, ordered by the groups, for one tenant only', async () => {
        const rows = await usage().report({ tenantId: A }, { ...march, groupBy: ['day', 'model'] });
        expect(rows.map((r) => [r.day, r.model, r.requests, r.errors, r.costUsd])).toEqual([
          ['2026-03-01', 'gpt-4o', 1, 0, 2],
          ['2026-03-09', 'gpt-4o-mini', 1, 1, 0.5],
          ['2026-03-10', 'gpt-4o', 2, 0, 1.125],
        ]);
      });

      it('groups by key, filters by key and model, and sums tokens as numbers', async () => {
        const byKey = await usage().report({ tenantId: A }, { ...march, groupBy: ['key'] });
        expect(Object.fromEntries(byKey.map((r) => [r.keyId ?? 'none', r.costUsd]))).toEqual({ [KA1]: 1.5, [KA2]: 2, none: 0.125 });
        const [one] = await usage().report({ tenantId: A }, { ...march, keyId: KA2, model: 'gpt-4o' });
        expect(one).toEqual({ requests: 1, errors: 0, inputTokens: 10, outputTokens: 5, cachedTokens: 3, costUsd: 2 });
      });

      it("reads every tenant's rows only with the 'all' scope, and never without a scope", async () => {
        const all = await usage().report('all', { ...march, groupBy: ['tenant'] });
        const byTenant = Object.fromEntries(all.map((r) => [r.tenantId, r.costUsd]));
        expect(byTenant[A]).toBe(3.625);
        expect(byTenant[B]).toBe(7);
        const [onlyB] = await usage().report({ tenantId: B }, march);
        expect(onlyB.costUsd).toBe(7);
        await expect(usage().report({} as { tenantId: string }, {})).rejects.toThrow(/tenant scope needs a tenantId/);
      });

      it('sums period spend per key: the month in [start, end), the day from its start; other tenants never', async () => {
        const spend = await usage().spendByKey(A, { dayStart: new Date('2026-03-10T00:00:00Z'), monthStart: march.from, monthEnd: march.to });
        const byKey = Object.fromEntries(spend.map((r) => [r.keyId ?? 'none', { day: r.dayUsd, month: r.monthUsd }]));
        expect(byKey).toEqual({ [KA1]: { day: 1, month: 1.5 }, [KA2]: { day: 0, month: 2 }, none: { day: 0.125, month: 0.125 } });
        expect(await usage().spendByKey(randomUUID(), { dayStart: march.from, monthStart: march.from, monthEnd: march.to })).toEqual([]);
        const b = await usage().spendByKey(B, { dayStart: new Date('2026-03-10T00:00:00Z'), monthStart: march.from, monthEnd: march.to });
        expect(b).toEqual([{ keyId: KB1, dayUsd: 7, monthUsd: 7 }]);
      });
    });
  });

  describe('tenancy: tenant id first', () => {
    it("keys are read, changed and deleted only under their own tenant's id", async () => {
      const a = await tenants().create({ name: `a-${randomUUID()}` });
      const b = await tenants().create({ name: `b-${randomUUID()}` });
      const k = await keys().create(a.id, { name: 'k', prefix: 'sk-gw-aa', keyHash: randomUUID(), tenantId: b.id });
      // The tenant id argument wins over one smuggled in the data.
      expect(k.tenantId).toBe(a.id);
      expect(await keys().get(b.id, k.id)).toBeNull();
      expect(await keys().list(b.id)).toEqual([]);
      expect(await keys().update(b.id, k.id, { name: 'stolen' })).toBeNull();
      expect(await keys().delete(b.id, k.id)).toBe(false);
      expect((await keys().get(a.id, k.id))?.name).toBe('k');
      expect((await keys().update(a.id, k.id, {}))?.name).toBe('k');
      expect(await keys().delete(a.id, k.id)).toBe(true);
    });

    it('loads the usable keys with their tenant: not revoked, tenant enabled', async () => {
      const on = await tenants().create({ name: `on-${randomUUID()}` });
      const off = await tenants().create({ name: `off-${randomUUID()}`, enabled: false });
      const good = await keys().create(on.id, { name: 'good', prefix: 'sk-gw-g', keyHash: `h-${randomUUID()}` });
      const revoked = await keys().create(on.id, { name: 'revoked', prefix: 'sk-gw-r', keyHash: `h-${randomUUID()}`, revokedAt: new Date() });
      const disabled = await keys().create(off.id, { name: 'disabled', prefix: 'sk-gw-d', keyHash: `h-${randomUUID()}` });
      const seen = new Map<string, string>();
      await keys().forEachActive((r) => seen.set(r.id, r.tenant_name));
      expect(seen.get(good.id)).toBe(on.name);
      expect(seen.has(revoked.id)).toBe(false);
      expect(seen.has(disabled.id)).toBe(false);
    });
  });

  describe('routes: scope first (null = global)', () => {
    it('keeps global and tenant routes apart, and a tenant never reaches another scope', async () => {
      const t = await tenants().create({ name: `r-${randomUUID()}` });
      const other = await tenants().create({ name: `o-${randomUUID()}` });
      const routes = new RouteRepository(ds.getRepository(RouteEntity));
      const pattern = `m-${randomUUID()}`;
      const global = await routes.save(null, { modelPattern: pattern, targets: [] });
      const own = await routes.save(t.id, { modelPattern: pattern, targets: [] });
      expect((await routes.findByPattern(null, pattern))?.id).toBe(global.id);
      expect((await routes.findByPattern(t.id, pattern))?.id).toBe(own.id);
      expect(await routes.findByPattern(other.id, pattern)).toBeNull();
      expect(await routes.get(other.id, own.id)).toBeNull();
      expect(await routes.get(t.id, global.id)).toBeNull();
      expect(await routes.delete(other.id, own.id)).toBe(false);
      expect((await routes.list(t.id)).map((r) => r.id)).toEqual([own.id]);
      expect((await routes.getAnyScope(own.id))?.tenantId).toBe(t.id);
      expect(await routes.delete(t.id, own.id)).toBe(true);
    });
  });

  describe('providers, settings and the audit log in one transaction (master-key rotation)', () => {
    it('locks sealed credentials, rewrites them, bumps config_version and appends an entry, or nothing on rollback', async () => {
      const providers = new ProviderRepository(ds.getRepository(ProviderEntity));
      const name = `p-${randomUUID()}`;
      const p = await providers.save({ name, kind: 'openai', baseUrl: 'https://api.openai.com/v1', credentialEnc: 'v1:old:sealed', settings: {} });
      await providers.save({ name: `n-${randomUUID()}`, kind: 'openai', baseUrl: 'https://api.openai.com/v1', credentialEnc: null, settings: {} });
      const settings = new SettingsRepository(ds.getRepository(SettingEntity));
      const before = Number(await settings.configVersion());

      await expect(
        ds.transaction(async (m) => {
          const tx = new ProviderRepository(m.getRepository(ProviderEntity));
          await tx.setSealedCredential(p.id, 'v1:new:sealed');
          await new SettingsRepository(m.getRepository(SettingEntity)).bumpConfigVersion();
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      expect((await providers.get(p.id))?.credentialEnc).toBe('v1:old:sealed');
      expect(Number(await settings.configVersion())).toBe(before);

      await ds.transaction(async (m) => {
        const tx = new ProviderRepository(m.getRepository(ProviderEntity));
        const sealed = await tx.lockSealedCredentials();
        expect(sealed.find((r) => r.id === p.id)).toEqual({ id: p.id, name, credentialEnc: 'v1:old:sealed' });
        expect(sealed.every((r) => r.credentialEnc)).toBe(true);
        await tx.setSealedCredential(p.id, 'v1:new:sealed');
        expect(await new SettingsRepository(m.getRepository(SettingEntity)).bumpConfigVersion()).toBe(String(before + 1));
        const audit = new AuditRepository(m.getRepository(AuditEntryEntity));
        expect(await audit.exists()).toBe(true);
        await audit.append({ actorRole: 'system', action: 'master_key.rotate', objectType: 'master_key', objectId: 'new', before: { keyId: 'old' }, after: { keyId: 'new' } });
      });
      expect((await providers.get(p.id))?.credentialEnc).toBe('v1:new:sealed');
      const [entry] = await new AuditRepository(ds.getRepository(AuditEntryEntity)).list('all', { action: 'master_key.*', limit: 1 });
      expect(entry).toMatchObject({ actorRole: 'system', objectId: 'new', tenantId: null, before: { keyId: 'old' } });
    });
  });

  describe('prices, settings and the database', () => {
    it('price overrides: one per pattern, an empty patch changes nothing', async () => {
      const prices = new PriceRepository(ds.getRepository(PriceEntity));
      const pattern = `model-${randomUUID()}`;
      const p = await prices.create({ modelPattern: pattern, inputPerM: 1.5, outputPerM: 3, cachedInputPerM: null });
      await expect(prices.create({ modelPattern: pattern, inputPerM: 1, outputPerM: 1 })).rejects.toMatchObject({ code: '23505' });
      expect((await prices.findByPattern(pattern))?.inputPerM).toBe(1.5);
      expect((await prices.update(p.id, {}))?.outputPerM).toBe(3);
      expect((await prices.update(p.id, { outputPerM: 4 }))?.outputPerM).toBe(4);
      expect(await prices.delete(p.id)).toBe(true);
      expect(await prices.delete(p.id)).toBe(false);
    });

    it('settings: setIfAbsent sets once', async () => {
      const settings = new SettingsRepository(ds.getRepository(SettingEntity));
      const key = `k-${randomUUID()}`;
      expect(await settings.setIfAbsent(key, 'one')).toBe(true);
      expect(await settings.setIfAbsent(key, 'two')).toBe(false);
      expect(await settings.get(key)).toBe('one');
    });

    it('pings, and serialises work under an advisory lock', async () => {
      const db = new DatabaseRepository(ds);
      await expect(db.ping()).resolves.toBeUndefined();
      const order: string[] = [];
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const first = db.withLock(DatabaseLock.EnvProviders, async () => {
        order.push('first in');
        await held;
        order.push('first out');
      });
      await new Promise((r) => setTimeout(r, 100));
      const second = db.withLock(DatabaseLock.EnvProviders, async () => void order.push('second'));
      await new Promise((r) => setTimeout(r, 200));
      // PGlite serves every connection from its one session, where advisory locks are reentrant: they only
      // serialise on PostgreSQL (what replicas run on). Either way the second holder gets in, and only once.
      const serialised = !!process.env.TEST_DATABASE_URL;
      expect(order).toEqual(serialised ? ['first in'] : ['first in', 'second']);
      release();
      await Promise.all([first, second]);
      expect(order).toEqual(serialised ? ['first in', 'first out', 'second'] : ['first in', 'second', 'first out']);
      // A failing callback still releases the lock.
      await expect(db.withLock(DatabaseLock.EnvProviders, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      await expect(db.withLock(DatabaseLock.EnvProviders, async () => 'ok')).resolves.toBe('ok');
    });
  });
});
