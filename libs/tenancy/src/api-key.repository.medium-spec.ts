import { ApiKeyEntity, TenantEntity } from '@gw/db';
import { MediumDatabase, mediumDatabase } from '@gw/testing';
import { randomBytes } from 'node:crypto';
import { ActiveKeyRow, ApiKeyRepository } from './api-key.repository';
import { TenantRepository } from './tenant.repository';

// Starting a PGlite copy takes seconds on a loaded machine.
jest.setTimeout(60_000);

describe('ApiKeyRepository and TenantRepository on a real database', () => {
  let db: MediumDatabase;
  let tenants: TenantRepository;
  let keys: ApiKeyRepository;

  beforeAll(async () => {
    db = await mediumDatabase();
    tenants = new TenantRepository(db.dataSource.getRepository(TenantEntity));
    keys = new ApiKeyRepository(db.dataSource.getRepository(ApiKeyEntity));
  });
  afterAll(() => db?.close());

  const newKey = (tenantId: string, name: string) =>
    keys.create(tenantId, { name, prefix: name.slice(0, 4), keyHash: randomBytes(32).toString('hex') });

  it('starts on a migrated schema of its own, with no tenants', async () => {
    expect(await tenants.list()).toEqual([]);
    const [{ n }] = await db.dataSource.query(`SELECT count(*)::int AS n FROM migrations`);
    expect(n).toBeGreaterThan(0);
  });

  it("never finds, changes or deletes tenant A's key through tenant B's id", async () => {
    const a = await tenants.create({ name: 'tenant-a' });
    const b = await tenants.create({ name: 'tenant-b' });
    const ka = await newKey(a.id, 'key-a');
    const kb = await newKey(b.id, 'key-b');

    expect((await keys.get(a.id, ka.id))?.name).toBe('key-a');
    expect(await keys.get(b.id, ka.id)).toBeNull();
    expect((await keys.list(b.id)).map((k) => k.id)).toEqual([kb.id]);
    expect((await keys.list(a.id)).map((k) => k.id)).toEqual([ka.id]);

    expect(await keys.update(b.id, ka.id, { name: 'stolen' })).toBeNull();
    expect(await keys.delete(b.id, ka.id)).toBe(false);
    expect((await keys.get(a.id, ka.id))?.name).toBe('key-a');

    // Even a create that names another tenant in its data lands in the tenant it was called for.
    const sneaky = await keys.create(b.id, { tenantId: a.id, name: 'sneaky', prefix: 'snea', keyHash: randomBytes(32).toString('hex') });
    expect(sneaky.tenantId).toBe(b.id);
    expect(await keys.get(a.id, sneaky.id)).toBeNull();

    expect(await keys.delete(a.id, ka.id)).toBe(true);
    expect(await keys.get(a.id, ka.id)).toBeNull();
  });

  it('loads only usable keys (not revoked, tenant enabled) with their tenant, for the key cache', async () => {
    const on = await tenants.create({ name: 'enabled-tenant', limits: { requestsPerMinute: 7 } });
    const off = await tenants.create({ name: 'disabled-tenant' });
    const live = await newKey(on.id, 'live');
    const revoked = await newKey(on.id, 'revoked');
    await keys.update(on.id, revoked.id, { revokedAt: new Date() });
    const expired = await newKey(on.id, 'expired');
    await keys.update(on.id, expired.id, { expiresAt: new Date(Date.now() - 60_000) });
    await newKey(off.id, 'of-disabled');
    await tenants.update(off.id, { enabled: false });

    const rows: ActiveKeyRow[] = [];
    await keys.forEachActive((r) => rows.push(r));
    const mine = rows.filter((r) => r.tenant_id === on.id || r.tenant_id === off.id);
    expect(mine.map((r) => r.name).sort()).toEqual(['expired', 'live']);
    const row = mine.find((r) => r.id === live.id)!;
    expect(row).toMatchObject({ tenant_name: 'enabled-tenant', tenant_limits: { requestsPerMinute: 7 }, key_hash: live.keyHash });
  });

  it('refuses a second tenant with the same name (unique constraint)', async () => {
    await tenants.create({ name: 'twice' });
    await expect(tenants.create({ name: 'twice' })).rejects.toMatchObject({ code: '23505' });
    expect((await tenants.findByName('twice'))?.name).toBe('twice');
  });
});
