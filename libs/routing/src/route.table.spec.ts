import type { ChangeFeed, RouteEntity, RouteTarget } from '@gw/db';
import type { ProviderCache, ResolvedProvider } from '@gw/providers';
import type { RouteRepository } from './route.repository';
import { ResolvedRoute, ResolvedTarget, RouteTable, orderTargets } from './route.table';

/** The provider cache as the route table sees it: get/all, and a reload that tells its listeners. */
class FakeProviders {
  private listeners: Array<() => void> = [];
  constructor(public list: ResolvedProvider[]) {}
  get(id: string) {
    return this.list.find((p) => p.id === id);
  }
  all() {
    return this.list;
  }
  onReload(l: () => void) {
    this.listeners.push(l);
  }
  async reload() {
    for (const l of this.listeners) l();
  }
}

const provider = (id: string, over: Partial<ResolvedProvider> = {}): ResolvedProvider =>
  ({ id, name: id, kind: 'openai', baseUrl: `http://${id}.test/v1`, credential: null, settings: {}, enabled: true, adapter: {}, responsesNative: false, ...over }) as ResolvedProvider;

let seq = 0;
const route = (modelPattern: string, targets: Array<Partial<RouteTarget> & { providerId: string }>, over: Partial<RouteEntity> = {}): RouteEntity =>
  ({ id: `r${++seq}-${modelPattern}`, tenantId: null, modelPattern, targets: targets as RouteTarget[], settings: {}, enabled: true, ...over }) as RouteEntity;

const noChanges = { subscribe: () => () => undefined } as unknown as ChangeFeed;
const tables: RouteTable[] = [];

async function tableOf(rows: RouteEntity[], providers: ResolvedProvider[] | FakeProviders) {
  const fake = providers instanceof FakeProviders ? providers : new FakeProviders(providers);
  const repo = { rows, listAll: async () => repo.rows };
  const table = new RouteTable(repo as unknown as RouteRepository, fake as unknown as ProviderCache, noChanges);
  await table.onApplicationBootstrap();
  tables.push(table);
  return { table, repo, providers: fake };
}
afterEach(() => {
  for (const t of tables.splice(0)) t.onApplicationShutdown();
});

/** The provider of the first target tried, or what is missing. */
const firstProvider = (table: RouteTable, tenant: string, model: string) => {
  const r = table.resolve(tenant, model);
  return r ? (r.groups[0]?.[0]?.provider.id ?? 'no-targets') : 'no-route';
};

const P = ['p-global-exact', 'p-global-glob', 'p-tenant-glob', 'p-tenant-exact'].map((id) => provider(id));

describe('RouteTable.resolve: which route a (tenant, model) gets', () => {
  const rows = () => [
    route('gpt-4o', [{ providerId: 'p-global-exact' }]),
    route('gpt-*', [{ providerId: 'p-global-glob' }]),
    route('gpt-4*', [{ providerId: 'p-tenant-glob' }], { tenantId: 'T' }),
    route('gpt-4o-mini', [{ providerId: 'p-tenant-exact' }], { tenantId: 'T' }),
  ];

  it("tenant exact, then tenant globs, then global exact, then global globs; other tenants see only global routes", async () => {
    const { table } = await tableOf(rows(), P);
    expect(firstProvider(table, 'T', 'gpt-4o-mini')).toBe('p-tenant-exact');
    // A tenant's own glob wins over a global exact name: the tenant scope is searched whole first.
    expect(firstProvider(table, 'T', 'gpt-4o')).toBe('p-tenant-glob');
    expect(firstProvider(table, 'T', 'gpt-3.5-turbo')).toBe('p-global-glob');
    expect(firstProvider(table, 'U', 'gpt-4o-mini')).toBe('p-global-glob');
    expect(firstProvider(table, 'U', 'gpt-4o')).toBe('p-global-exact');
    expect(firstProvider(table, 'U', 'claude-3')).toBe('no-route');
    expect(firstProvider(table, 'T', 'claude-3')).toBe('no-route');
  });

  it('gives the same answers whatever order the rows come in', async () => {
    const { table } = await tableOf(rows().reverse(), P);
    expect(['gpt-4o-mini', 'gpt-4o', 'gpt-3.5-turbo'].map((m) => firstProvider(table, 'T', m))).toEqual(['p-tenant-exact', 'p-tenant-glob', 'p-global-glob']);
    expect(['gpt-4o-mini', 'gpt-4o'].map((m) => firstProvider(table, 'U', m))).toEqual(['p-global-glob', 'p-global-exact']);
  });

  it('an exact name matches only itself: no prefix, case or regex-character leaks', async () => {
    const { table } = await tableOf([route('gpt-4.1', [{ providerId: 'p-global-exact' }])], P);
    expect(firstProvider(table, 'T', 'gpt-4.1')).toBe('p-global-exact');
    for (const m of ['gpt-4x1', 'gpt-4.1-mini', 'GPT-4.1', 'xgpt-4.1']) expect(firstProvider(table, 'T', m)).toBe('no-route');
  });

  it('tries the most specific glob first (longest literal part), whatever the creation order', async () => {
    const globs = ['*', 'gpt-*', 'gpt-4o-*', '?pt-4o-mini*'];
    const providers = globs.map((g) => provider(`p:${g}`));
    for (const order of [globs, [...globs].reverse(), ['gpt-*', '?pt-4o-mini*', '*', 'gpt-4o-*']]) {
      const { table } = await tableOf(order.map((g) => route(g, [{ providerId: `p:${g}` }])), providers);
      expect(firstProvider(table, 'T', 'gpt-4o-mini-2024')).toBe('p:?pt-4o-mini*');
      expect(firstProvider(table, 'T', 'gpt-4o-2024')).toBe('p:gpt-4o-*');
      expect(firstProvider(table, 'T', 'gpt-3.5')).toBe('p:gpt-*');
      expect(firstProvider(table, 'T', 'llama3')).toBe('p:*');
      // `?` is one character, `*` any run: neither matches across what the pattern's literals require.
      expect(firstProvider(table, 'T', 'pt-4o-mini')).toBe('p:*');
    }
  });

  it('between equally specific globs, the one created first wins', async () => {
    const ps = [provider('first'), provider('second')];
    const a = await tableOf([route('a*', [{ providerId: 'first' }]), route('*a', [{ providerId: 'second' }])], ps);
    expect(firstProvider(a.table, 'T', 'aa')).toBe('first');
    const b = await tableOf([route('*a', [{ providerId: 'first' }]), route('a*', [{ providerId: 'second' }])], ps);
    expect(firstProvider(b.table, 'T', 'aa')).toBe('first');
  });

  it('leaves out disabled routes: a disabled tenant route falls back to the global one', async () => {
    const { table } = await tableOf(
      [route('gpt-4o', [{ providerId: 'p-global-exact' }]), route('gpt-4o', [{ providerId: 'p-tenant-exact' }], { tenantId: 'T', enabled: false }), route('gpt-*', [{ providerId: 'p-global-glob' }], { enabled: false })],
      P,
    );
    expect(firstProvider(table, 'T', 'gpt-4o')).toBe('p-global-exact');
    expect(firstProvider(table, 'T', 'gpt-4o-mini')).toBe('no-route');
  });

  it('leaves out targets whose provider is disabled or gone, and a route with none left lists no model', async () => {
    const ps = [provider('on', { settings: { models: ['gpt-discovered'] } }), provider('off', { enabled: false })];
    const { table } = await tableOf(
      [
        route('mixed', [{ providerId: 'off' }, { providerId: 'gone' }, { providerId: 'on', model: 'real-name' }]),
        route('dead', [{ providerId: 'off' }, { providerId: 'gone', priority: 1 }]),
        route('gpt-*', [{ providerId: 'on' }]),
      ],
      ps,
    );
    const mixed = table.resolve('T', 'mixed')!;
    expect(mixed.groups.flat().map((t) => t.provider.id)).toEqual(['on']);
    expect(table.resolve('T', 'dead')!.groups).toEqual([]);
    expect(table.modelsFor('T').map((m) => m.id).sort()).toEqual(['gpt-discovered', 'mixed']);
  });

  it('an alias keeps its upstream model name; a target without one passes the requested name through (null)', async () => {
    const { table } = await tableOf([route('fast', [{ providerId: 'p-global-exact', model: 'gpt-4o-mini' }]), route('gpt-*', [{ providerId: 'p-global-glob' }])], P);
    expect(table.resolve('T', 'fast')!.groups[0][0]).toMatchObject({ model: 'gpt-4o-mini', weight: 1 });
    expect(table.resolve('T', 'gpt-4o')!.groups[0][0].model).toBeNull();
  });

  it('groups targets by priority, lowest first, and clamps a negative weight to 0', async () => {
    const ps = ['a', 'b', 'c', 'd'].map((id) => provider(id));
    const { table } = await tableOf(
      [route('m', [{ providerId: 'c', priority: 2 }, { providerId: 'a', priority: 0, weight: 3 }, { providerId: 'd', priority: 1, weight: -5 }, { providerId: 'b' }])],
      ps,
    );
    const groups = table.resolve('T', 'm')!.groups;
    expect(groups.map((g) => g.map((t) => t.provider.id))).toEqual([['a', 'b'], ['d'], ['c']]);
    expect(groups.map((g) => g.map((t) => t.weight))).toEqual([[3, 1], [0], [1]]);
  });

  it('a reload of routes or of providers replaces remembered answers', async () => {
    const { table, repo, providers } = await tableOf([route('gpt-*', [{ providerId: 'p-global-glob' }])], P);
    expect(firstProvider(table, 'T', 'gpt-4o')).toBe('p-global-glob');
    repo.rows = [...repo.rows, route('gpt-4o', [{ providerId: 'p-tenant-exact' }], { tenantId: 'T' })];
    await table.reload();
    expect(firstProvider(table, 'T', 'gpt-4o')).toBe('p-tenant-exact');
    providers.list = providers.list.map((p) => (p.id === 'p-tenant-exact' ? { ...p, enabled: false } : p));
    await providers.reload();
    expect(firstProvider(table, 'T', 'gpt-4o')).toBe('no-targets');
  });
});

/** mulberry32: a small seeded PRNG, so the distribution checks are repeatable. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const target = (id: string, weight = 1): ResolvedTarget => ({ provider: provider(id), model: null, weight });
const routeOf = (...groups: ResolvedTarget[][]): ResolvedRoute => ({ id: 'r', pattern: 'm', settings: {}, groups });
const ids = (ts: ResolvedTarget[]) => ts.map((t) => t.provider.id);

describe('orderTargets', () => {
  it('returns every target once, each priority group whole before the next (fallbacks after)', () => {
    const r = routeOf([target('a1'), target('a2', 5), target('a3', 0)], [target('b1')], [target('c1', 2), target('c2', 2)]);
    const random = seeded(1);
    const bad: string[][] = [];
    const firsts = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const order = ids(orderTargets(r, random));
      const ok = order.length === 6 && [...order.slice(0, 3)].sort().join() === 'a1,a2,a3' && order[3] === 'b1' && [...order.slice(4)].sort().join() === 'c1,c2';
      if (!ok) bad.push(order);
      firsts.add(order[0]);
    }
    expect(bad).toEqual([]);
    // The shuffle is real: both weighted targets of the first group come first sometimes.
    expect([...firsts].sort()).toEqual(['a1', 'a2']);
  });

  it('picks the first target in proportion to its weight within a group', () => {
    const r = routeOf([target('x', 1), target('y', 2), target('z', 7)], [target('fallback')]);
    const random = seeded(42);
    const n = 20_000;
    const first: Record<string, number> = { x: 0, y: 0, z: 0 };
    const second: Record<string, number> = { x: 0, y: 0, z: 0 };
    for (let i = 0; i < n; i++) {
      const [a, b] = ids(orderTargets(r, random));
      first[a]++;
      second[b]++;
    }
    // Binomial standard deviation at n = 20 000 is at most 0.0036: 0.015 is four of them.
    expect(Math.abs(first.x / n - 0.1)).toBeLessThan(0.015);
    expect(Math.abs(first.y / n - 0.2)).toBeLessThan(0.015);
    expect(Math.abs(first.z / n - 0.7)).toBeLessThan(0.015);
    // The second pick is weighted among what is left: P(y second) = P(x)·2/9 + P(z)·2/3 = 0.0222 + 0.4667.
    expect(Math.abs(second.y / n - (0.1 * 2) / 9 - (0.7 * 2) / 3)).toBeLessThan(0.015);
  });

  it('never puts a weight-0 target first while another has weight, but keeps it as a fallback', () => {
    const r = routeOf([target('zero', 0), target('one', 1), target('two', 2)]);
    const random = seeded(7);
    let zeroFirst = 0;
    let zeroMissing = 0;
    for (let i = 0; i < 5_000; i++) {
      const order = ids(orderTargets(r, random));
      if (order[0] === 'zero') zeroFirst++;
      if (!order.includes('zero')) zeroMissing++;
    }
    expect({ zeroFirst, zeroMissing }).toEqual({ zeroFirst: 0, zeroMissing: 0 });
  });

  it('draws evenly when every weight in a group is 0', () => {
    const r = routeOf([target('a', 0), target('b', 0), target('c', 0), target('d', 0)]);
    const random = seeded(2024);
    const n = 20_000;
    const first: Record<string, number> = { a: 0, b: 0, c: 0, d: 0 };
    for (let i = 0; i < n; i++) first[orderTargets(r, random)[0].provider.id]++;
    for (const k of Object.keys(first)) expect(Math.abs(first[k] / n - 0.25)).toBeLessThan(0.015);
  });

  it('maps the random draw onto cumulative weights (0 → first, just under 1 → last)', () => {
    const r = routeOf([target('a', 1), target('b', 1), target('c', 2)]);
    expect(ids(orderTargets(r, () => 0))).toEqual(['a', 'b', 'c']);
    expect(ids(orderTargets(r, () => 0.999999))[0]).toBe('c');
    // total 4: [0,1) → a, [1,2) → b, [2,4) → c.
    expect(ids(orderTargets(r, () => 0.3))[0]).toBe('b');
    expect(ids(orderTargets(r, () => 0.5))[0]).toBe('c');
  });

  it('returns a one-target group as is, and nothing for a route without targets', () => {
    const only = target('only', 0);
    expect(orderTargets(routeOf([only]), () => 0.5)).toEqual([only]);
    expect(orderTargets(routeOf())).toEqual([]);
  });
});
