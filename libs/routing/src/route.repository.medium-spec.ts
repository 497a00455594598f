import { RouteEntity, TenantEntity } from '@gw/db';
import { TenantRepository } from '@gw/tenancy';
import { MediumDatabase, mediumDatabase } from '@gw/testing';
import { RouteRepository } from './route.repository';

// Starting a PGlite copy takes seconds on a loaded machine.
jest.setTimeout(60_000);

describe('RouteRepository on a real database: scope first (null = global)', () => {
  let db: MediumDatabase;
  let routes: RouteRepository;
  let tenants: TenantRepository;

  beforeAll(async () => {
    db = await mediumDatabase();
    routes = new RouteRepository(db.dataSource.getRepository(RouteEntity));
    tenants = new TenantRepository(db.dataSource.getRepository(TenantEntity));
  });
  afterAll(() => db?.close());

  it('keeps global and tenant routes apart, and a tenant never reaches another scope', async () => {
    const t = await tenants.create({ name: 'routes-t' });
    const other = await tenants.create({ name: 'routes-other' });
    const global = await routes.save(null, { modelPattern: 'gpt-*', targets: [] });
    // The scope argument wins over a tenant id smuggled in the data.
    const own = await routes.save(t.id, { modelPattern: 'gpt-*', targets: [], tenantId: other.id });
    expect(own.tenantId).toBe(t.id);
    expect((await routes.findByPattern(null, 'gpt-*'))?.id).toBe(global.id);
    expect((await routes.findByPattern(t.id, 'gpt-*'))?.id).toBe(own.id);
    expect(await routes.findByPattern(other.id, 'gpt-*')).toBeNull();
    expect(await routes.get(other.id, own.id)).toBeNull();
    expect(await routes.get(t.id, global.id)).toBeNull();
    expect(await routes.get(null, own.id)).toBeNull();
    expect(await routes.update(other.id, own.id, { enabled: false })).toBeNull();
    expect(await routes.delete(other.id, own.id)).toBe(false);
    expect(await routes.delete(null, own.id)).toBe(false);
    expect((await routes.list(t.id)).map((r) => r.id)).toEqual([own.id]);
    expect((await routes.list(null)).map((r) => r.id)).toEqual([global.id]);
    expect((await routes.listAll()).map((r) => r.id).sort()).toEqual([global.id, own.id].sort());
    expect((await routes.getAnyScope(own.id))?.tenantId).toBe(t.id);
    expect((await routes.update(t.id, own.id, { enabled: false }))?.enabled).toBe(false);
    expect(await routes.delete(t.id, own.id)).toBe(true);
  });

  it("a tenant's routes go with the tenant", async () => {
    const t = await tenants.create({ name: 'routes-gone' });
    const r = await routes.save(t.id, { modelPattern: 'm', targets: [] });
    expect(await tenants.delete(t.id)).toBe(true);
    expect(await routes.getAnyScope(r.id)).toBeNull();
  });
});
