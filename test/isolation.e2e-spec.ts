import { FakeProvider, Stack, startStack } from '@gw/testing';

jest.setTimeout(60_000);

const UPSTREAM_SECRET = 'sk-upstream-isolation-plaintext';
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

interface Team {
  tenantId: string;
  admin: { id: string; secret: string };
  viewer: { id: string; secret: string };
  key: { id: string; secret: string };
  routeId: string;
}

/**
 * Tenant B's admin and viewer against tenant A, on every admin endpoint the OpenAPI document lists
 * (so endpoints added later are covered without touching this file): 404, never 403, and the database
 * unchanged. Then the data plane: B's key cannot reach A's routes, B's usage never shows A's rows.
 */
describe('tenant isolation', () => {
  let stack: Stack;
  let fake: FakeProvider;
  let providerId: string;
  let priceId: string;
  let A: Team;
  let B: Team;

  const chat = (secret: string, model: string) =>
    fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });

  async function team(name: string): Promise<Team> {
    const tenantId = (await stack.api('POST', '/admin/tenants', { name, allowTenantRoutes: true })).body.id;
    const admin = (await stack.api('POST', '/admin/tokens', { role: 'admin', tenantId, name: `${name}-admin` })).body;
    const viewer = (await stack.api('POST', `/admin/tenants/${tenantId}/tokens`, { role: 'viewer', name: `${name}-viewer` }, admin.secret)).body;
    const key = (await stack.api('POST', `/admin/tenants/${tenantId}/keys`, { name: `${name}-key` }, admin.secret)).body;
    const route = await stack.api('POST', '/admin/routes', { modelPattern: `${name}-only`, targets: [{ providerId, model: 'gpt-4o-mini' }] }, admin.secret);
    expect(route.status).toBe(201);
    return { tenantId, admin, viewer, key, routeId: route.body.id };
  }

  /** Every table, every row, minus last_used_at (authenticating is allowed to touch it). */
  async function snapshot(): Promise<Record<string, unknown[]>> {
    const tables: { table_name: string }[] = await stack.sql(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`,
    );
    const out: Record<string, unknown[]> = {};
    for (const { table_name } of tables) {
      const rows = await stack.sql(`SELECT row_to_json(t)::jsonb - 'last_used_at' AS r FROM "${table_name}" t`);
      out[table_name] = rows.map((x: any) => JSON.stringify(x.r)).sort();
    }
    return out;
  }

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai', apiKey: UPSTREAM_SECRET });
    stack = await startStack();
    providerId = (await stack.api('POST', '/admin/providers', { name: 'openai', kind: 'openai', baseUrl: fake.baseUrl, credential: UPSTREAM_SECRET })).body.id;
    await stack.api('POST', '/admin/routes', { modelPattern: 'gpt-4o-mini', targets: [{ providerId }] });
    priceId = (await stack.api('POST', '/admin/prices', { modelPattern: 'iso-*', inputPerM: 1, outputPerM: 1 })).body.id;
    A = await team('team-a');
    B = await team('team-b');
    for (const [secret, model] of [
      [A.key.secret, 'gpt-4o-mini'],
      [A.key.secret, 'team-a-only'],
      [B.key.secret, 'gpt-4o-mini'],
    ]) {
      expect((await chat(secret, model)).status).toBe(200);
    }
    await stack.flushLedger();
  });

  afterAll(async () => {
    await stack?.close();
    await fake?.close();
  });

  describe('admin API, every endpoint that takes an id', () => {
    let doc: any;
    const aIds = () => [A.tenantId, A.key.id, A.admin.id, A.viewer.id, A.routeId];

    beforeAll(async () => {
      doc = await (await fetch(`${stack.adminUrl}/admin/docs/openapi.json`)).json();
    });

    /** Which of A's objects to name for `{param}` in `path`: the matching kind, or every A id if unknown. */
    function candidates(path: string, param: string): string[] {
      if (param === 'tenantId') return [A.tenantId];
      if (param !== 'id') return aIds();
      if (path.startsWith('/admin/tenants/{id}')) return [A.tenantId];
      if (path.includes('/keys/')) return [A.key.id];
      if (path.includes('/tokens/')) return [A.admin.id, A.viewer.id];
      if (path.startsWith('/admin/routes/')) return [A.routeId];
      if (path.startsWith('/admin/providers/')) return [providerId];
      if (path.startsWith('/admin/prices/')) return [priceId];
      return aIds();
    }

    function expand(path: string, pick: (param: string) => string[]): string[] {
      const m = /\{(\w+)\}/.exec(path);
      if (!m) return [path];
      return pick(m[1]).flatMap((v) => expand(path.replace(m[0], v), pick));
    }

    it('the OpenAPI document lists the id-taking endpoints (so the sweep below is not empty)', () => {
      const paths = Object.keys(doc.paths);
      expect(paths).toEqual(
        expect.arrayContaining([
          '/admin/tenants/{id}',
          '/admin/tenants/{tenantId}/keys',
          '/admin/tenants/{tenantId}/keys/{id}',
          '/admin/tenants/{tenantId}/keys/{id}/revoke',
          '/admin/tenants/{tenantId}/tokens',
          '/admin/tenants/{tenantId}/tokens/{id}',
          '/admin/tenants/{tenantId}/tokens/{id}/revoke',
          '/admin/tokens/{id}',
          '/admin/tokens/{id}/revoke',
          '/admin/routes/{id}',
          '/admin/providers/{id}',
          '/admin/prices/{id}',
        ]),
      );
    });

    it("B's admin and viewer get 404 for each of A's objects, and nothing changes", async () => {
      const before = await snapshot();
      const calls: string[] = [];
      const wrong: string[] = [];
      for (const [path, item] of Object.entries<any>(doc.paths)) {
        if (!path.includes('{')) continue;
        for (const method of METHODS.filter((m) => item[m])) {
          for (const url of expand(path, (p) => candidates(path, p))) {
            for (const [who, token] of [
              ['admin', B.admin.secret],
              ['viewer', B.viewer.secret],
            ] as const) {
              const r = await stack.api(method.toUpperCase(), url, method === 'get' || method === 'delete' ? undefined : {}, token);
              calls.push(`${who} ${method} ${url}`);
              if (r.status !== 404 || r.body?.error?.type !== 'invalid_request_error')
                wrong.push(`${who} ${method.toUpperCase()} ${url} → ${r.status} ${JSON.stringify(r.body)}`);
            }
          }
        }
      }
      expect(wrong).toEqual([]);
      expect(calls.length).toBeGreaterThan(40);
      expect(await snapshot()).toEqual(before);
    });

    it("B's admin naming its own tenant but A's object ids gets 404 too, and nothing changes", async () => {
      const before = await snapshot();
      const wrong: string[] = [];
      let n = 0;
      for (const [path, item] of Object.entries<any>(doc.paths)) {
        if (!path.includes('{tenantId}') || !path.includes('{id}')) continue;
        for (const method of METHODS.filter((m) => item[m])) {
          for (const url of expand(path, (p) => (p === 'tenantId' ? [B.tenantId] : candidates(path, p)))) {
            const r = await stack.api(method.toUpperCase(), url, method === 'get' || method === 'delete' ? undefined : {}, B.admin.secret);
            n++;
            if (r.status !== 404) wrong.push(`${method.toUpperCase()} ${url} → ${r.status} ${JSON.stringify(r.body)}`);
          }
        }
      }
      expect(wrong).toEqual([]);
      expect(n).toBeGreaterThanOrEqual(8);
      expect(await snapshot()).toEqual(before);
    });

    it("the same 404 for A's real ids as for made-up ones: responses do not tell them apart", async () => {
      const fake = '00000000-0000-4000-8000-000000000000';
      for (const [real, made] of [
        [`/admin/tenants/${A.tenantId}`, `/admin/tenants/${fake}`],
        [`/admin/tenants/${A.tenantId}/keys/${A.key.id}`, `/admin/tenants/${fake}/keys/${A.key.id}`],
        [`/admin/routes/${A.routeId}`, `/admin/routes/${fake}`],
        [`/admin/tokens/${A.admin.id}`, `/admin/tokens/${fake}`],
      ]) {
        const a = await stack.api('GET', real, undefined, B.admin.secret);
        const b = await stack.api('GET', made, undefined, B.admin.secret);
        expect(a.status).toBe(404);
        expect(a.body.error.message.replace(/[0-9a-f-]{36}/g, 'ID')).toBe(b.body.error.message.replace(/[0-9a-f-]{36}/g, 'ID'));
        expect(a.body.error.code).toBe(b.body.error.code);
      }
    });

    it("no list B can read mentions any of A's ids, and B cannot create into A", async () => {
      const before = await snapshot();
      for (const [path, item] of Object.entries<any>(doc.paths)) {
        if (path.includes('{') || !item.get) continue;
        for (const token of [B.admin.secret, B.viewer.secret]) {
          const q = path === '/admin/usage' ? '?groupBy=tenant,key,model,provider' : '';
          const r = await stack.api('GET', path + q, undefined, token);
          expect([200, 403]).toContain(r.status);
          const text = JSON.stringify(r.body);
          for (const id of aIds()) expect([path, text.includes(id)]).toEqual([path, false]);
        }
      }
      // B's own lists are not empty: the check above is not vacuous
      expect((await stack.api('GET', '/admin/tenants', undefined, B.admin.secret)).body.map((t: any) => t.id)).toEqual([B.tenantId]);
      expect((await stack.api('GET', '/admin/routes', undefined, B.admin.secret)).body.map((r: any) => r.id)).toEqual([B.routeId]);
      expect((await stack.api('GET', '/admin/audit', undefined, B.admin.secret)).body.data.length).toBeGreaterThan(0);

      const intoA = await stack.api('POST', '/admin/routes', { modelPattern: 'sneaky', tenantId: A.tenantId, targets: [{ providerId }] }, B.admin.secret);
      expect(intoA.status).toBe(404);
      expect((await stack.api('POST', '/admin/tokens', { role: 'admin', tenantId: A.tenantId, name: 'sneaky' }, B.admin.secret)).status).toBe(403);
      expect((await stack.api('GET', `/admin/audit?tenantId=${A.tenantId}`, undefined, B.admin.secret)).status).toBe(404);
      expect(await snapshot()).toEqual(before);
    });
  });

  describe('data plane', () => {
    it("B's key cannot use A's tenant route: 404 model_not_found, and /v1/models does not list it", async () => {
      const r = await chat(B.key.secret, 'team-a-only');
      expect(r.status).toBe(404);
      expect(((await r.json()) as any).error.code).toBe('model_not_found');
      expect((await chat(A.key.secret, 'team-a-only')).status).toBe(200);
      const models: any = await (await fetch(`${stack.baseURL}/models`, { headers: { authorization: `Bearer ${B.key.secret}` } })).json();
      const ids = models.data.map((m: any) => m.id);
      expect(ids).toContain('team-b-only');
      expect(ids).not.toContain('team-a-only');
    });

    it("B's usage never includes A's rows, whatever B asks for", async () => {
      await stack.flushLedger();
      for (const token of [B.admin.secret, B.viewer.secret]) {
        const grouped = await stack.api('GET', '/admin/usage?groupBy=tenant,key', undefined, token);
        expect(grouped.body.data.map((r: any) => [r.tenantId, r.keyId])).toEqual([[B.tenantId, B.key.id]]);
        const byAKey = await stack.api('GET', `/admin/usage?keyId=${A.key.id}`, undefined, token);
        expect(byAKey.body.data).toEqual([expect.objectContaining({ requests: 0 })]);
        expect((await stack.api('GET', `/admin/usage?tenantId=${A.tenantId}`, undefined, token)).status).toBe(404);
        const csv = await stack.api('GET', '/admin/usage?groupBy=tenant,key&format=csv', undefined, token);
        expect(csv.body).toContain(B.key.id);
        expect(csv.body).not.toContain(A.key.id);
      }
      // and A's rows are there for A
      const mine = await stack.api('GET', '/admin/usage', undefined, A.viewer.secret);
      expect(mine.body.data[0].requests).toBeGreaterThanOrEqual(2);
    });
  });

  it('the raw providers table, and the whole database, hold no plaintext credential', async () => {
    const [row] = await stack.sql('SELECT * FROM providers WHERE id = $1', [providerId]);
    expect(row.credential_enc).toMatch(/^v1:[0-9a-f]{8}:[\w-]+:[\w-]+:[\w-]+$/);
    expect(JSON.stringify(row)).not.toContain(UPSTREAM_SECRET);
    const dump = JSON.stringify(await snapshot());
    expect(dump).not.toContain(UPSTREAM_SECRET);
    expect(dump).not.toContain(A.key.secret);
    expect(dump).not.toContain(A.admin.secret);
    // …while the gateway did use it upstream
    expect(fake.requestsTo('/chat/completions').some((r) => r.headers.authorization === `Bearer ${UPSTREAM_SECRET}`)).toBe(true);
  });
});
