import OpenAI from 'openai';
import { createHash, randomBytes } from 'node:crypto';
import { FakeProvider, Stack, TEST_ADMIN_TOKEN, eventually, startStack } from '@gw/testing';

jest.setTimeout(60_000);

/** A well-formed UUID that names nothing. */
const NOBODY = '00000000-0000-4000-8000-000000000000';
const uniq = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

interface ApiResult {
  status: number;
  body: any;
}

/** Asserts an OpenAI-shaped error: exactly message/type/param/code, with the given status and fields. */
function expectError(res: ApiResult, status: number, fields: { code?: string | null; param?: string | null; type?: string } = {}): void {
  expect(res.status).toBe(status);
  expect(Object.keys(res.body ?? {})).toEqual(['error']);
  const e = res.body.error;
  expect(Object.keys(e).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(e.message).toMatch(/\S/);
  expect(typeof e.type).toBe('string');
  expect(e).toMatchObject(fields);
}

/** The 400 for a bad body: the field is named in `param` and at the start of the message. */
function expectInvalid(res: ApiResult, param: string): void {
  expectError(res, 400, { param, type: 'invalid_request_error' });
  expect(res.body.error.message.startsWith(`${param}: `)).toBe(true);
}

/** Minimal RFC 4180 reader: quoted fields may hold commas, quotes ("") and newlines. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

describe('admin API (root token): CRUD, validation, errors, usage', () => {
  let stack: Stack;
  let fakeA: FakeProvider;
  let fakeB: FakeProvider;

  beforeAll(async () => {
    fakeA = await FakeProvider.start({ flavor: 'openai', apiKey: 'sk-upstream-a' });
    fakeB = await FakeProvider.start({ flavor: 'openai', apiKey: 'sk-upstream-b' });
    stack = await startStack();
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([fakeA?.close(), fakeB?.close()]);
  });

  beforeEach(() => {
    fakeA.reset();
    fakeB.reset();
  });

  const api = (method: string, path: string, body?: unknown) => stack.api(method, path, body);
  async function newTenant(name = uniq('t')): Promise<string> {
    const r = await api('POST', '/admin/tenants', { name });
    expect(r.status).toBe(201);
    return r.body.id;
  }
  async function newKey(tenantId: string, body: object = {}): Promise<{ id: string; secret: string }> {
    const r = await api('POST', `/admin/tenants/${tenantId}/keys`, { name: 'k', ...body });
    expect(r.status).toBe(201);
    return { id: r.body.id, secret: r.body.secret };
  }

  describe('authentication', () => {
    const paths = ['/admin/tenants', '/admin/providers', '/admin/routes', '/admin/prices', '/admin/usage', `/admin/tenants/${NOBODY}/keys`];

    it('401 missing_api_key without a token, on every resource', async () => {
      for (const path of paths) {
        const res = await fetch(`${stack.adminUrl}${path}`);
        const body = await res.json();
        expectError({ status: res.status, body }, 401, { code: 'missing_api_key', param: null });
      }
      const post = await fetch(`${stack.adminUrl}/admin/tenants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"name":"sneaky"}',
      });
      expect(post.status).toBe(401);
      expect((await api('GET', '/admin/tenants')).body.map((t: any) => t.name)).not.toContain('sneaky');
    });

    it('401 invalid_api_key with a wrong token, and with a tenant key (not an admin credential)', async () => {
      for (const path of paths) {
        expectError(await stack.api('GET', path, undefined, 'not-the-admin-token-at-all'), 401, { code: 'invalid_api_key' });
      }
      const { secret } = await newKey(await newTenant());
      expectError(await stack.api('GET', '/admin/tenants', undefined, secret), 401, { code: 'invalid_api_key' });
      expectError(await stack.api('GET', '/admin/tenants', undefined, TEST_ADMIN_TOKEN.slice(0, -1)), 401, { code: 'invalid_api_key' });
      expect((await stack.api('GET', '/admin/tenants')).status).toBe(200);
    });
  });

  describe('tenants', () => {
    it('create, get, list, update (limits merge), delete', async () => {
      const name = uniq('acme');
      const created = await api('POST', '/admin/tenants', { name, limits: { requestsPerMinute: 60 } });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), name, enabled: true, limits: { requestsPerMinute: 60 } });
      const id = created.body.id;

      expect((await api('GET', `/admin/tenants/${id}`)).body).toMatchObject({ id, name });
      expect((await api('GET', '/admin/tenants')).body.map((t: any) => t.id)).toContain(id);

      const renamed = await api('PATCH', `/admin/tenants/${id}`, { name: `${name}-2`, limits: { tokensPerMinute: 1000 }, enabled: false });
      expect(renamed.status).toBe(200);
      expect(renamed.body).toMatchObject({ name: `${name}-2`, enabled: false, limits: { requestsPerMinute: 60, tokensPerMinute: 1000 } });
      expect((await api('GET', `/admin/tenants/${id}`)).body).toMatchObject({ name: `${name}-2`, enabled: false });

      const del = await api('DELETE', `/admin/tenants/${id}`);
      expect(del.status).toBe(204);
      expect(del.body).toBeUndefined();
      expectError(await api('GET', `/admin/tenants/${id}`), 404, { code: 'tenant_not_found' });
      expect((await api('GET', '/admin/tenants')).body.map((t: any) => t.id)).not.toContain(id);
    });

    it('409 conflict on a duplicate name, at create and at rename', async () => {
      const a = uniq('dup');
      await newTenant(a);
      const b = await newTenant();
      expectError(await api('POST', '/admin/tenants', { name: a }), 409, { code: 'conflict', param: 'name' });
      expectError(await api('PATCH', `/admin/tenants/${b}`, { name: a }), 409, { code: 'conflict', param: 'name' });
      expect((await api('GET', '/admin/tenants')).body.filter((t: any) => t.name === a)).toHaveLength(1);
    });

    it('400 naming the field for a bad body', async () => {
      const missing = await api('POST', '/admin/tenants', {});
      expectInvalid(missing, 'name');
      expect(missing.body.error.message).toBe('name: name must be a string');
      expectInvalid(await api('POST', '/admin/tenants', { name: 'has spaces' }), 'name');
      expectInvalid(await api('POST', '/admin/tenants', { name: 'ok', plan: 'gold' }), 'plan');
      expectInvalid(await api('POST', '/admin/tenants', { name: 'ok', limits: { requestsPerMinute: -1 } }), 'limits.requestsPerMinute');
      expectInvalid(await api('POST', '/admin/tenants', { name: 'ok', limits: { requestsPerMinute: 1.5 } }), 'limits.requestsPerMinute');
      expectInvalid(await api('POST', '/admin/tenants', { name: 'ok', limits: { perFortnight: 1 } }), 'limits.perFortnight');
      expectInvalid(await api('POST', '/admin/tenants', { name: 'ok', limits: 'lots' }), 'limits');
      const id = await newTenant();
      expectInvalid(await api('PATCH', `/admin/tenants/${id}`, { enabled: 'yes' }), 'enabled');
      // nothing half-created by the refused calls
      expect((await api('GET', '/admin/tenants')).body.map((t: any) => t.name)).not.toContain('ok');
    });

    it('400 (not 500) on a non-UUID id and on malformed JSON; 404 on unknown ids', async () => {
      expectError(await api('GET', '/admin/tenants/not-a-uuid'), 400);
      const raw = await fetch(`${stack.adminUrl}/admin/tenants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: '{"name": ',
      });
      expectError({ status: raw.status, body: await raw.json() }, 400, { code: 'invalid_json' });
      for (const [method, body] of [['GET'], ['PATCH', { enabled: false }], ['DELETE']] as const) {
        expectError(await api(method, `/admin/tenants/${NOBODY}`, body), 404, { code: 'tenant_not_found', type: 'invalid_request_error' });
      }
    });
  });

  describe('keys', () => {
    it('returns the secret only from create; lists show the prefix; the database keeps only a hash', async () => {
      const tenantId = await newTenant();
      const created = await api('POST', `/admin/tenants/${tenantId}/keys`, { name: 'alice-laptop', allowedModels: ['gpt-4o*'] });
      expect(created.status).toBe(201);
      const { id, secret, prefix } = created.body;
      expect(secret).toMatch(/^sk-gw-[A-Za-z0-9_-]{20,}$/);
      expect(secret.startsWith(prefix)).toBe(true);
      expect(prefix.length).toBeLessThan(secret.length - 16);
      expect(created.body).not.toHaveProperty('keyHash');
      expect(created.body).toMatchObject({ tenantId, name: 'alice-laptop', allowedModels: ['gpt-4o*'], revokedAt: null });

      const got = await api('GET', `/admin/tenants/${tenantId}/keys/${id}`);
      const list = await api('GET', `/admin/tenants/${tenantId}/keys`);
      expect(got.status).toBe(200);
      expect(list.body).toHaveLength(1);
      for (const view of [got.body, list.body[0]]) {
        expect(view).toMatchObject({ id, prefix, name: 'alice-laptop' });
        expect(view).not.toHaveProperty('secret');
        expect(view).not.toHaveProperty('keyHash');
        expect(JSON.stringify(view)).not.toContain(secret.slice(prefix.length));
      }

      const [row] = await stack.sql(`SELECT row_to_json(k)::text AS j, key_hash, prefix FROM api_keys k WHERE id = $1`, [id]);
      expect(row.key_hash).toBe(createHash('sha256').update(secret).digest('hex'));
      expect(row.prefix).toBe(prefix);
      expect(row.j).not.toContain(secret);
      expect(row.j).not.toContain(secret.slice(prefix.length));
    });

    it('update, revoke, delete; the key works at the gateway until revoked', async () => {
      const tenantId = await newTenant();
      const { id, secret } = await newKey(tenantId);
      const client = new OpenAI({ apiKey: secret, baseURL: stack.baseURL, maxRetries: 0 });
      await expect(client.models.list()).resolves.toBeDefined();

      const patched = await api('PATCH', `/admin/tenants/${tenantId}/keys/${id}`, { name: 'renamed', allowedModels: ['x'], expiresAt: '2099-01-01T00:00:00Z' });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ name: 'renamed', allowedModels: ['x'], expiresAt: '2099-01-01T00:00:00.000Z' });
      expect(patched.body).not.toHaveProperty('secret');

      const revoked = await api('POST', `/admin/tenants/${tenantId}/keys/${id}/revoke`);
      expect(revoked.status).toBe(200);
      expect(revoked.body.revokedAt).toEqual(expect.any(String));
      expect(revoked.body).not.toHaveProperty('secret');
      expect(
        await eventually(
          () =>
            client.models.list().then(
              () => false,
              (e) => e.status === 401,
            ),
          2000,
        ),
      ).toBe(true);

      expect((await api('DELETE', `/admin/tenants/${tenantId}/keys/${id}`)).status).toBe(204);
      expectError(await api('GET', `/admin/tenants/${tenantId}/keys/${id}`), 404, { code: 'key_not_found' });
      expect((await api('GET', `/admin/tenants/${tenantId}/keys`)).body).toEqual([]);
    });

    it('keys live inside their tenant: another tenant path or an unknown tenant gives 404', async () => {
      const t1 = await newTenant();
      const t2 = await newTenant();
      const { id } = await newKey(t1);
      for (const [method, suffix, body] of [
        ['GET', ''],
        ['PATCH', '', { name: 'x' }],
        ['POST', '/revoke'],
        ['DELETE', ''],
      ] as const) {
        expectError(await api(method, `/admin/tenants/${t2}/keys/${id}${suffix}`, body), 404, { code: 'key_not_found' });
      }
      expect((await api('GET', `/admin/tenants/${t1}/keys/${id}`)).body).toMatchObject({ name: 'k', revokedAt: null });
      expectError(await api('GET', `/admin/tenants/${NOBODY}/keys`), 404, { code: 'tenant_not_found' });
      expectError(await api('POST', `/admin/tenants/${NOBODY}/keys`, { name: 'k' }), 404, { code: 'tenant_not_found' });
    });

    it('deleting a tenant deletes its keys: they stop working at the gateway', async () => {
      const tenantId = await newTenant();
      const { secret } = await newKey(tenantId);
      const client = new OpenAI({ apiKey: secret, baseURL: stack.baseURL, maxRetries: 0 });
      await expect(client.models.list()).resolves.toBeDefined();
      expect((await api('DELETE', `/admin/tenants/${tenantId}`)).status).toBe(204);
      expect(
        await eventually(
          () =>
            client.models.list().then(
              () => false,
              (e) => e.status === 401,
            ),
          2000,
        ),
      ).toBe(true);
      expect(await stack.sql(`SELECT id FROM api_keys WHERE tenant_id = $1`, [tenantId])).toEqual([]);
    });

    it('400 naming the field for a bad body; a client cannot choose the secret', async () => {
      const tenantId = await newTenant();
      const keys = `/admin/tenants/${tenantId}/keys`;
      expectInvalid(await api('POST', keys, {}), 'name');
      expectInvalid(await api('POST', keys, { name: 'k', secret: 'sk-gw-chosen-by-me' }), 'secret');
      expectInvalid(await api('POST', keys, { name: 'k', allowedIps: ['10.0.0.0/8', 'not-an-ip'] }), 'allowedIps');
      expectInvalid(await api('POST', keys, { name: 'k', allowedModels: 'gpt-4o' }), 'allowedModels');
      expectInvalid(await api('POST', keys, { name: 'k', expiresAt: 'tomorrow' }), 'expiresAt');
      expectInvalid(await api('POST', keys, { name: 'k', limits: { dailyBudgetUsd: -5 } }), 'limits.dailyBudgetUsd');
      expect((await api('GET', keys)).body).toEqual([]);
      expectError(await api('GET', `/admin/tenants/not-a-uuid/keys`), 400);
    });
  });

  describe('providers', () => {
    const CREDENTIAL = 'sk-live-provider-credential-0123456789';

    it('the credential is write-only: never in a response, sealed in the database', async () => {
      const name = uniq('prov');
      const created = await api('POST', '/admin/providers', { name, kind: 'openai', baseUrl: 'http://127.0.0.1:9/v1/', credential: CREDENTIAL });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ name, kind: 'openai', baseUrl: 'http://127.0.0.1:9/v1', enabled: true, hasCredential: true });
      const id = created.body.id;
      const got = await api('GET', `/admin/providers/${id}`);
      const list = await api('GET', '/admin/providers');
      const listed = list.body.find((p: any) => p.id === id);
      const patched = await api('PATCH', `/admin/providers/${id}`, { settings: { headers: { 'X-Title': 'team' } } });
      for (const res of [created, got, list, patched]) {
        expect(res.status).toBeLessThan(300);
        expect(JSON.stringify(res.body)).not.toContain(CREDENTIAL);
        expect(JSON.stringify(res.body)).not.toMatch(/credential"|credentialEnc/);
      }
      expect(listed).toMatchObject({ id, hasCredential: true });
      expect(patched.body).toMatchObject({ hasCredential: true, settings: { headers: { 'X-Title': 'team' } } });

      const [row] = await stack.sql(`SELECT credential_enc FROM providers WHERE id = $1`, [id]);
      expect(row.credential_enc).toEqual(expect.any(String));
      expect(row.credential_enc).not.toContain(CREDENTIAL);
      expect(row.credential_enc).not.toContain(Buffer.from(CREDENTIAL).toString('base64').slice(0, 20));
      expect(row.credential_enc).not.toContain(Buffer.from(CREDENTIAL).toString('hex').slice(0, 20));

      // replacing the credential re-seals it; null clears it
      const replaced = await api('PATCH', `/admin/providers/${id}`, { credential: 'sk-another-one-9876543210' });
      expect(replaced.body.hasCredential).toBe(true);
      const [row2] = await stack.sql(`SELECT credential_enc FROM providers WHERE id = $1`, [id]);
      expect(row2.credential_enc).not.toBe(row.credential_enc);
      const cleared = await api('PATCH', `/admin/providers/${id}`, { credential: null });
      expect(cleared.body.hasCredential).toBe(false);
      expect((await stack.sql(`SELECT credential_enc FROM providers WHERE id = $1`, [id]))[0].credential_enc).toBeNull();
    });

    it('credential-like extra headers are write-only too: redacted in every view, kept when sent back redacted', async () => {
      const created = await api('POST', '/admin/providers', {
        name: uniq('hdr'),
        kind: 'openai',
        baseUrl: fakeA.baseUrl,
        settings: { headers: { Authorization: 'Bearer sk-header-secret', 'X-Goog-Api-Key': 'g-secret', 'X-Auth-Token': 't-secret', 'X-Title': 'team' } },
      });
      expect(created.status).toBe(201);
      const id = created.body.id;
      const redacted = { Authorization: '[redacted]', 'X-Goog-Api-Key': '[redacted]', 'X-Auth-Token': '[redacted]', 'X-Title': 'team' };
      const got = await api('GET', `/admin/providers/${id}`);
      const listed = (await api('GET', '/admin/providers')).body.find((p: any) => p.id === id);
      for (const view of [created.body, got.body, listed]) {
        expect(view.settings.headers).toEqual(redacted);
        expect(JSON.stringify(view)).not.toMatch(/sk-header-secret|g-secret|t-secret/);
      }
      // A client that PATCHes back what it read keeps the stored values; a new value replaces one.
      const patched = await api('PATCH', `/admin/providers/${id}`, { settings: { headers: { ...got.body.settings.headers, 'X-Auth-Token': 't-new' } } });
      expect(patched.status).toBe(200);
      expect(patched.body.settings.headers).toEqual(redacted);
      const [row] = await stack.sql('SELECT settings FROM providers WHERE id = $1', [id]);
      expect(row.settings.headers).toEqual({
        Authorization: 'Bearer sk-header-secret',
        'X-Goog-Api-Key': 'g-secret',
        'X-Auth-Token': 't-new',
        'X-Title': 'team',
      });
      await api('DELETE', `/admin/providers/${id}`);
    });

    it('a new baseUrl must come with the credentials again (400 credential_required): they never follow it to another host', async () => {
      const created = await api('POST', '/admin/providers', { name: uniq('moving'), kind: 'openai', baseUrl: fakeA.baseUrl, credential: 'sk-bound-to-a' });
      const id = created.body.id;
      expectError(await api('PATCH', `/admin/providers/${id}`, { baseUrl: fakeB.baseUrl }), 400, { code: 'credential_required', param: 'credential' });
      // The same URL (trailing slash aside) is no change.
      expect((await api('PATCH', `/admin/providers/${id}`, { baseUrl: `${fakeA.baseUrl}/` })).status).toBe(200);
      const moved = await api('PATCH', `/admin/providers/${id}`, { baseUrl: fakeB.baseUrl, credential: 'sk-upstream-b' });
      expect(moved.body).toMatchObject({ baseUrl: fakeB.baseUrl, hasCredential: true });
      const dropped = await api('PATCH', `/admin/providers/${id}`, { baseUrl: fakeA.baseUrl, credential: null });
      expect(dropped.body).toMatchObject({ baseUrl: fakeA.baseUrl, hasCredential: false });
      // Credential-like headers are bound the same way.
      expect((await api('PATCH', `/admin/providers/${id}`, { settings: { headers: { 'X-Api-Key': 'k-secret', 'X-Title': 't' } } })).status).toBe(200);
      expectError(await api('PATCH', `/admin/providers/${id}`, { baseUrl: fakeB.baseUrl }), 400, { code: 'credential_required', param: 'settings.headers' });
      expectError(await api('PATCH', `/admin/providers/${id}`, { baseUrl: fakeB.baseUrl, settings: { headers: { 'X-Api-Key': '[redacted]' } } }), 400, {
        code: 'credential_required',
      });
      const rebound = await api('PATCH', `/admin/providers/${id}`, {
        baseUrl: fakeB.baseUrl,
        settings: { headers: { 'X-Api-Key': 'k-for-b', 'X-Title': 't' } },
      });
      expect(rebound.status).toBe(200);
      expect((await stack.sql('SELECT settings FROM providers WHERE id = $1', [id]))[0].settings.headers).toEqual({ 'X-Api-Key': 'k-for-b', 'X-Title': 't' });
      await api('DELETE', `/admin/providers/${id}`);
    });

    it('the sealed credential is what the upstream receives', async () => {
      const p = await api('POST', '/admin/providers', { name: uniq('sealed'), kind: 'openai', baseUrl: fakeA.baseUrl, credential: 'sk-upstream-a' });
      const route = await api('POST', '/admin/routes', { modelPattern: 'gpt-4o', targets: [{ providerId: p.body.id }] });
      expect(route.status).toBe(201);
      try {
        const { secret } = await newKey(await newTenant());
        const client = new OpenAI({ apiKey: secret, baseURL: stack.baseURL, maxRetries: 0 });
        await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
        expect(fakeA.requestsTo('/chat/completions').map((r) => r.headers.authorization)).toEqual(['Bearer sk-upstream-a']);
      } finally {
        await api('DELETE', `/admin/routes/${route.body.id}`);
      }
    });

    it('defaults the base URL per kind; delete; 404 on unknown ids', async () => {
      const created = await api('POST', '/admin/providers', { name: uniq('local'), kind: 'ollama' });
      expect(created.body).toMatchObject({ baseUrl: 'http://localhost:11434/v1', hasCredential: false });
      expect((await api('DELETE', `/admin/providers/${created.body.id}`)).status).toBe(204);
      for (const [method, body] of [['GET'], ['PATCH', { enabled: false }], ['DELETE']] as const) {
        expectError(await api(method, `/admin/providers/${created.body.id}`, body), 404, { code: 'provider_not_found' });
      }
    });

    it('409 on a duplicate name; 400 naming the field for a bad body', async () => {
      const name = uniq('twin');
      expect((await api('POST', '/admin/providers', { name, kind: 'openai' })).status).toBe(201);
      expectError(await api('POST', '/admin/providers', { name, kind: 'openrouter' }), 409, { code: 'conflict', param: 'name' });
      const other = await api('POST', '/admin/providers', { name: uniq('twin'), kind: 'openai' });
      expectError(await api('PATCH', `/admin/providers/${other.body.id}`, { name }), 409, { code: 'conflict', param: 'name' });

      expectInvalid(await api('POST', '/admin/providers', { kind: 'openai' }), 'name');
      expectInvalid(await api('POST', '/admin/providers', { name: uniq('p'), kind: 'anthropic' }), 'kind');
      expectInvalid(await api('POST', '/admin/providers', { name: uniq('p') }), 'kind');
      expectInvalid(await api('POST', '/admin/providers', { name: uniq('p'), kind: 'openai', baseUrl: 'ftp://x' }), 'baseUrl');
      expectInvalid(await api('POST', '/admin/providers', { name: uniq('p'), kind: 'openai', credential: 42 }), 'credential');
      expectInvalid(await api('POST', '/admin/providers', { name: uniq('p'), kind: 'openai', settings: { retries: 3 } }), 'settings.retries');
      expectInvalid(await api('POST', '/admin/providers', { name: uniq('p'), kind: 'openai', apiKey: 'sk' }), 'apiKey');
    });
  });

  describe('routes', () => {
    let providerA: string;
    let providerB: string;
    beforeAll(async () => {
      providerA = (await api('POST', '/admin/providers', { name: 'route-a', kind: 'openai', baseUrl: fakeA.baseUrl, credential: 'sk-upstream-a' })).body.id;
      providerB = (await api('POST', '/admin/providers', { name: 'route-b', kind: 'openai', baseUrl: fakeB.baseUrl, credential: 'sk-upstream-b' })).body.id;
    });

    it('global and tenant-scoped CRUD, with target defaults and scope filtering', async () => {
      const tenantId = await newTenant();
      const global = await api('POST', '/admin/routes', {
        modelPattern: 'crud-*',
        targets: [{ providerId: providerA }, { providerId: providerB, model: 'gpt-4o', weight: 3 }],
      });
      expect(global.status).toBe(201);
      expect(global.body).toMatchObject({
        tenantId: null,
        modelPattern: 'crud-*',
        enabled: true,
        targets: [
          { providerId: providerA, model: null, weight: 1, priority: 0 },
          { providerId: providerB, model: 'gpt-4o', weight: 3, priority: 1 },
        ],
      });
      const scoped = await api('POST', '/admin/routes', {
        modelPattern: 'crud-*',
        tenantId,
        targets: [{ providerId: providerB }],
        settings: { maxAttempts: 1 },
      });
      expect(scoped.status).toBe(201);
      expect(scoped.body).toMatchObject({ tenantId, modelPattern: 'crud-*', settings: { maxAttempts: 1 } });

      expect((await api('GET', `/admin/routes/${scoped.body.id}`)).body).toMatchObject({ id: scoped.body.id, tenantId });
      const all = (await api('GET', '/admin/routes')).body.map((r: any) => r.id);
      expect(all).toEqual(expect.arrayContaining([global.body.id, scoped.body.id]));
      expect((await api('GET', `/admin/routes?tenantId=${tenantId}`)).body.map((r: any) => r.id)).toEqual([scoped.body.id]);

      const patched = await api('PATCH', `/admin/routes/${scoped.body.id}`, { modelPattern: 'crud-x', enabled: false, settings: { backoffMs: 10 } });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ modelPattern: 'crud-x', enabled: false, tenantId, settings: { maxAttempts: 1, backoffMs: 10 } });

      for (const id of [global.body.id, scoped.body.id]) {
        expect((await api('DELETE', `/admin/routes/${id}`)).status).toBe(204);
        for (const [method, body] of [['GET'], ['PATCH', { enabled: true }], ['DELETE']] as const) {
          expectError(await api(method, `/admin/routes/${id}`, body), 404, { code: 'route_not_found' });
        }
      }
    });

    it('409 on a duplicate pattern within a scope only', async () => {
      const tenantId = await newTenant();
      const body = { modelPattern: uniq('dup-model'), targets: [{ providerId: providerA }] };
      expect((await api('POST', '/admin/routes', body)).status).toBe(201);
      expectError(await api('POST', '/admin/routes', body), 409, { code: 'conflict', param: 'modelPattern' });
      expect((await api('POST', '/admin/routes', { ...body, tenantId })).status).toBe(201);
      expectError(await api('POST', '/admin/routes', { ...body, tenantId }), 409, { code: 'conflict', param: 'modelPattern' });
      const other = await api('POST', '/admin/routes', { modelPattern: uniq('other'), targets: [{ providerId: providerA }] });
      expectError(await api('PATCH', `/admin/routes/${other.body.id}`, { modelPattern: body.modelPattern }), 409, { code: 'conflict', param: 'modelPattern' });
    });

    it('400 naming the field (targets[0].providerId included), 404 for an unknown tenant', async () => {
      expectInvalid(await api('POST', '/admin/routes', { targets: [{ providerId: providerA }] }), 'modelPattern');
      expectInvalid(await api('POST', '/admin/routes', { modelPattern: 'x' }), 'targets');
      expectInvalid(await api('POST', '/admin/routes', { modelPattern: 'x', targets: [] }), 'targets');
      expectInvalid(await api('POST', '/admin/routes', { modelPattern: 'x', targets: [{ providerId: 'openai' }] }), 'targets[0].providerId');
      expectInvalid(
        await api('POST', '/admin/routes', { modelPattern: 'x', targets: [{ providerId: providerA }, { providerId: providerA, weight: -1 }] }),
        'targets[1].weight',
      );
      // a well-formed id that names no provider: same param, from the service rather than the DTO
      expectInvalid(await api('POST', '/admin/routes', { modelPattern: 'x', targets: [{ providerId: NOBODY }] }), 'targets[0].providerId');
      expectInvalid(await api('POST', '/admin/routes', { modelPattern: 'x', targets: [{ providerId: providerA, upstream: 'y' }] }), 'targets[0].upstream');
      expectInvalid(await api('POST', '/admin/routes', { modelPattern: 'x', tenantId: 'team-a', targets: [{ providerId: providerA }] }), 'tenantId');
      expectInvalid(
        await api('POST', '/admin/routes', { modelPattern: 'x', targets: [{ providerId: providerA }], settings: { maxAttempts: 0 } }),
        'settings.maxAttempts',
      );
      // Bounds: Node timers overflow past 2^31-1 ms (a 3e9 ms timeout would fire at once); retries multiply load.
      for (const [field, value] of [
        ['maxAttempts', 11],
        ['backoffMs', 60_001],
        ['connectTimeoutMs', 3_600_001],
        ['firstByteTimeoutMs', 3e9],
        ['idleTimeoutMs', 0],
        ['totalTimeoutMs', 3e9],
      ] as const) {
        expectInvalid(
          await api('POST', '/admin/routes', { modelPattern: 'x', targets: [{ providerId: providerA }], settings: { [field]: value } }),
          `settings.${field}`,
        );
      }
      const edge = await api('POST', '/admin/routes', {
        modelPattern: uniq('edge'),
        targets: [{ providerId: providerA }],
        settings: {
          maxAttempts: 10,
          backoffMs: 60_000,
          connectTimeoutMs: 3_600_000,
          firstByteTimeoutMs: 1,
          idleTimeoutMs: 3_600_000,
          totalTimeoutMs: 3_600_000,
        },
      });
      expect(edge.status).toBe(201);
      await api('DELETE', `/admin/routes/${edge.body.id}`);
      expectError(await api('GET', '/admin/routes?tenantId=team-a'), 400, { param: 'tenantId' });
      expectError(await api('POST', '/admin/routes', { modelPattern: 'x', tenantId: NOBODY, targets: [{ providerId: providerA }] }), 404, {
        code: 'tenant_not_found',
      });
      expect((await api('GET', '/admin/routes')).body.filter((r: any) => r.modelPattern === 'x')).toEqual([]);
    });

    it('a tenant route overrides the global one for that tenant only (through the gateway)', async () => {
      const t1 = await newTenant();
      const t2 = await newTenant();
      const c1 = new OpenAI({ apiKey: (await newKey(t1)).secret, baseURL: stack.baseURL, maxRetries: 0 });
      const c2 = new OpenAI({ apiKey: (await newKey(t2)).secret, baseURL: stack.baseURL, maxRetries: 0 });
      const global = await api('POST', '/admin/routes', { modelPattern: 'gpt-4o-mini', targets: [{ providerId: providerA }] });
      const scoped = await api('POST', '/admin/routes', { modelPattern: 'gpt-4o-mini', tenantId: t1, targets: [{ providerId: providerB }] });
      expect([global.status, scoped.status]).toEqual([201, 201]);
      const ask = (c: OpenAI) => c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'who serves me?' }] });
      try {
        await ask(c1);
        expect(fakeB.requestsTo('/chat/completions')).toHaveLength(1);
        expect(fakeB.requestsTo('/chat/completions')[0].headers.authorization).toBe('Bearer sk-upstream-b');
        expect(fakeA.requestsTo('/chat/completions')).toHaveLength(0);

        await ask(c2);
        expect(fakeA.requestsTo('/chat/completions')).toHaveLength(1);
        expect(fakeB.requestsTo('/chat/completions')).toHaveLength(1);

        const owner = async (c: OpenAI) => (await c.models.list()).data.find((m) => m.id === 'gpt-4o-mini')?.owned_by;
        expect(await owner(c1)).toBe('route-b');
        expect(await owner(c2)).toBe('route-a');

        // disabling the tenant route hands the tenant back to the global one
        expect((await api('PATCH', `/admin/routes/${scoped.body.id}`, { enabled: false })).status).toBe(200);
        fakeA.reset();
        fakeB.reset();
        expect(await eventually(async () => (await owner(c1)) === 'route-a', 2000)).toBe(true);
        await ask(c1);
        expect(fakeA.requestsTo('/chat/completions')).toHaveLength(1);
        expect(fakeB.requestsTo('/chat/completions')).toHaveLength(0);

        // a route whose only provider is disabled is not offered in /v1/models, and answers 503
        expect((await api('PATCH', `/admin/providers/${providerA}`, { enabled: false })).status).toBe(200);
        expect(await eventually(async () => (await owner(c2)) === undefined, 2000)).toBe(true);
        await expect(ask(c2)).rejects.toMatchObject({ status: 503 });
      } finally {
        await api('PATCH', `/admin/providers/${providerA}`, { enabled: true });
        await api('DELETE', `/admin/routes/${scoped.body.id}`);
        await api('DELETE', `/admin/routes/${global.body.id}`);
      }
    });
  });

  describe('prices', () => {
    it('holds overrides only (the install-time rows gave way to the catalog); create, get, update, delete', async () => {
      // Changed: the initial migration's list prices are removed by CatalogPrices (the catalog has them).
      const list = await api('GET', '/admin/prices');
      expect(list.body.map((p: any) => p.modelPattern)).not.toContain('gpt-4o-mini*');

      const pattern = uniq('my-model');
      const created = await api('POST', '/admin/prices', { modelPattern: pattern, inputPerM: 1.25, outputPerM: 10 });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ modelPattern: pattern, inputPerM: 1.25, outputPerM: 10, cachedInputPerM: null });
      const id = created.body.id;
      expect((await api('GET', `/admin/prices/${id}`)).body).toMatchObject({ id, inputPerM: 1.25, outputPerM: 10 });
      const patched = await api('PATCH', `/admin/prices/${id}`, { cachedInputPerM: 0.125, outputPerM: 8 });
      expect(patched.body).toMatchObject({ inputPerM: 1.25, outputPerM: 8, cachedInputPerM: 0.125 });
      expect((await api('DELETE', `/admin/prices/${id}`)).status).toBe(204);
      for (const [method, body] of [['GET'], ['PATCH', { inputPerM: 1 }], ['DELETE']] as const) {
        expectError(await api(method, `/admin/prices/${id}`, body), 404, { code: 'price_not_found' });
      }
    });

    it('409 on a duplicate pattern; 400 naming the field for a bad body', async () => {
      const taken = uniq('taken');
      expect((await api('POST', '/admin/prices', { modelPattern: taken, inputPerM: 1, outputPerM: 1 })).status).toBe(201);
      expectError(await api('POST', '/admin/prices', { modelPattern: taken, inputPerM: 1, outputPerM: 1 }), 409, { code: 'conflict', param: 'modelPattern' });
      expectInvalid(await api('POST', '/admin/prices', { inputPerM: 1, outputPerM: 1 }), 'modelPattern');
      expectInvalid(await api('POST', '/admin/prices', { modelPattern: 'p', outputPerM: 1 }), 'inputPerM');
      expectInvalid(await api('POST', '/admin/prices', { modelPattern: 'p', inputPerM: '1', outputPerM: 1 }), 'inputPerM');
      expectInvalid(await api('POST', '/admin/prices', { modelPattern: 'p', inputPerM: 1, outputPerM: -1 }), 'outputPerM');
      expectInvalid(await api('POST', '/admin/prices', { modelPattern: 'p', inputPerM: 1, outputPerM: 1, currency: 'EUR' }), 'currency');
      expect((await api('GET', '/admin/prices')).body.map((p: any) => p.modelPattern)).not.toContain('p');
    });

    it('409 (not 500) when a rename takes a pattern that exists: the database unique violation is a conflict', async () => {
      const p = await api('POST', '/admin/prices', { modelPattern: uniq('rename-me'), inputPerM: 1, outputPerM: 1 });
      expect(p.status).toBe(201);
      const other = await api('POST', '/admin/prices', { modelPattern: uniq('exists'), inputPerM: 1, outputPerM: 1 });
      expect(other.status).toBe(201);
      // TypeORM reports the failed UPDATE on console.log: expected here.
      const quiet = jest.spyOn(console, 'log').mockImplementation(() => undefined);
      try {
        expectError(await api('PATCH', `/admin/prices/${p.body.id}`, { modelPattern: other.body.modelPattern }), 409, {
          code: 'conflict',
          param: 'modelPattern',
        });
      } finally {
        quiet.mockRestore();
        await api('DELETE', `/admin/prices/${p.body.id}`);
        await api('DELETE', `/admin/prices/${other.body.id}`);
      }
    });
  });

  describe('usage', () => {
    let tenantId: string;
    let k1: string;
    let k2: string;
    const WEIRD = 'we,ird "model"';

    /** Sums ledger rows the way the report should. */
    function totals(rows: any[]) {
      return {
        requests: rows.length,
        errors: rows.filter((r) => r.status >= 400).length,
        inputTokens: rows.reduce((s, r) => s + r.input_tokens, 0),
        outputTokens: rows.reduce((s, r) => s + r.output_tokens, 0),
        cachedTokens: rows.reduce((s, r) => s + r.cached_tokens, 0),
        costUsd: rows.reduce((s, r) => s + Number(r.cost_usd), 0),
      };
    }
    function expectTotals(actual: any, rows: any[]): void {
      const t = totals(rows);
      expect(actual).toMatchObject({ ...t, costUsd: expect.any(Number) });
      expect(actual.costUsd).toBeCloseTo(t.costUsd, 8);
    }
    const ledger = (where = '', params: unknown[] = []) =>
      stack.sql(`SELECT * FROM usage_records WHERE tenant_id = $1 ${where} ORDER BY started_at`, [tenantId, ...params]);
    const report = async (query: string) => {
      const r = await api('GET', `/admin/usage?${query}`);
      expect(r.status).toBe(200);
      expect(r.body.object).toBe('list');
      return r.body.data as any[];
    };

    beforeAll(async () => {
      tenantId = await newTenant();
      k1 = (await newKey(tenantId)).id;
      k2 = (await newKey(tenantId)).id;
      const other = await newTenant();
      const kOther = (await newKey(other)).id;
      // Fixed past rows around UTC midnights, to check day buckets and the from/to bounds exactly.
      const rows: [string, string, string, string, number, number, number, number, number][] = [
        [tenantId, k1, 'm-a', '2025-03-01T10:00:00Z', 200, 100, 10, 5, 0.001],
        [tenantId, k1, 'm-b', '2025-03-01T23:59:59.999Z', 200, 200, 20, 0, 0.002],
        [tenantId, k2, 'm-a', '2025-03-02T00:00:00Z', 429, 0, 0, 0, 0],
        [tenantId, k2, 'm-b', '2025-03-02T12:00:00Z', 200, 300, 30, 100, 0.00312345],
        [tenantId, k1, 'm-a', '2025-03-03T00:00:00Z', 502, 50, 0, 0, 0],
        [tenantId, k2, WEIRD, '2025-03-03T08:00:00Z', 200, 7, 3, 0, 0.5],
        [other, kOther, 'm-a', '2025-03-01T11:00:00Z', 200, 1000, 100, 0, 1],
      ];
      for (const [t, k, model, at, status, input, output, cached, cost] of rows) {
        await stack.sql(
          `INSERT INTO usage_records (request_id, tenant_id, key_id, endpoint, requested_model, upstream_model, status, input_tokens, output_tokens, cached_tokens, cost_usd, started_at, finished_at)
           VALUES ($1, $2, $3, '/v1/chat/completions', $4, $4, $5, $6, $7, $8, $9, $10, $10)`,
          [`req_${randomBytes(8).toString('hex')}`, t, k, model, status, input, output, cached, cost, at],
        );
      }
    });

    it('filters by tenant, key, model and time range, with totals matching the ledger', async () => {
      const [all] = await report(`tenantId=${tenantId}`);
      expectTotals(all, await ledger());
      expect(all.requests).toBe(6);

      const [byKey] = await report(`tenantId=${tenantId}&keyId=${k1}`);
      expectTotals(byKey, await ledger('AND key_id = $2', [k1]));
      expect(byKey.requests).toBe(3);
      // keyId alone (no tenant) finds the same rows
      expect(await report(`keyId=${k1}`)).toEqual([byKey]);

      const [byModel] = await report(`tenantId=${tenantId}&model=m-a`);
      expectTotals(byModel, await ledger(`AND requested_model = 'm-a'`));
      expect(byModel).toMatchObject({ requests: 3, errors: 2 });

      // from is inclusive, to exclusive
      const [range] = await report(`tenantId=${tenantId}&from=2025-03-01T23:59:59.999Z&to=2025-03-02T12:00:00Z`);
      expectTotals(range, await ledger(`AND started_at >= '2025-03-01T23:59:59.999Z' AND started_at < '2025-03-02T12:00:00Z'`));
      expect(range.requests).toBe(2);

      // every tenant: the whole ledger
      await stack.flushLedger();
      const [everything] = await report('');
      expectTotals(everything, await stack.sql(`SELECT * FROM usage_records`));
      expect(everything.requests).toBeGreaterThanOrEqual(7);
    });

    it('groups by day (UTC), model and key; combined groups; empty ranges', async () => {
      const rows = await ledger();
      const byDay = await report(`tenantId=${tenantId}&groupBy=day`);
      expect(byDay.map((r) => [r.day, r.requests])).toEqual([
        ['2025-03-01', 2],
        ['2025-03-02', 2],
        ['2025-03-03', 2],
      ]);
      for (const g of byDay)
        expectTotals(
          g,
          rows.filter((r) => r.started_at.toISOString().slice(0, 10) === g.day),
        );

      const byModel = await report(`tenantId=${tenantId}&groupBy=model`);
      expect(byModel.map((r) => r.model).sort()).toEqual(['m-a', 'm-b', WEIRD].sort());
      for (const g of byModel)
        expectTotals(
          g,
          rows.filter((r) => r.requested_model === g.model),
        );

      const byKey = await report(`tenantId=${tenantId}&groupBy=key`);
      expect(byKey.map((r) => r.keyId).sort()).toEqual([k1, k2].sort());
      for (const g of byKey)
        expectTotals(
          g,
          rows.filter((r) => r.key_id === g.keyId),
        );

      const byDayModel = await report(`tenantId=${tenantId}&groupBy=day,model`);
      expect(byDayModel).toHaveLength(6);
      for (const g of byDayModel)
        expectTotals(
          g,
          rows.filter((r) => r.started_at.toISOString().slice(0, 10) === g.day && r.requested_model === g.model),
        );
      expect(byDayModel.reduce((s, g) => s + g.requests, 0)).toBe(rows.length);

      expect(await report(`tenantId=${tenantId}&from=2030-01-01T00:00:00Z&groupBy=day`)).toEqual([]);
      expect(await report(`tenantId=${tenantId}&from=2030-01-01T00:00:00Z`)).toEqual([
        { requests: 0, errors: 0, inputTokens: 0, outputTokens: 0, cachedTokens: 0, costUsd: 0 },
      ]);
    });

    it('meters real gateway traffic: report totals equal what the SDK saw', async () => {
      const route = await api('POST', '/admin/routes', {
        modelPattern: 'text-embedding-3-small',
        targets: [{ providerId: (await api('GET', '/admin/providers')).body.find((p: any) => p.name === 'route-a').id }],
      });
      expect(route.status).toBe(201);
      const key = await newKey(tenantId);
      const client = new OpenAI({ apiKey: key.secret, baseURL: stack.baseURL, maxRetries: 0 });
      try {
        const a = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'one' });
        const b = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['two', 'three', 'four'] });
        await stack.flushLedger();
        const [r] = await report(`keyId=${key.id}`);
        expect(r).toMatchObject({ requests: 2, errors: 0, inputTokens: a.usage.prompt_tokens + b.usage.prompt_tokens });
        expect(r.inputTokens).toBeGreaterThan(0);
        expectTotals(r, await ledger('AND key_id = $2', [key.id]));
        // priced by the catalog's text-embedding-3-small: $0.02 per 1M input tokens
        expect(r.costUsd).toBeCloseTo((r.inputTokens * 0.02) / 1e6, 8);
      } finally {
        await api('DELETE', `/admin/routes/${route.body.id}`);
      }
    });

    it('format=csv parses to the same rows as JSON (quoting included)', async () => {
      const query = `tenantId=${tenantId}&groupBy=day,model`;
      const json = await report(query);
      const res = await api('GET', `/admin/usage?${query}&format=csv`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
      expect(typeof res.body).toBe('string');
      const [header, ...lines] = parseCsv(res.body);
      expect(header).toEqual(['day', 'model', 'requests', 'errors', 'inputTokens', 'outputTokens', 'cachedTokens', 'costUsd']);
      expect(lines).toHaveLength(json.length);
      const parsed = lines.map((l) => Object.fromEntries(header.map((h, i) => [h, ['day', 'model'].includes(h) ? l[i] : Number(l[i])])));
      expect(parsed).toEqual(json);
      expect(parsed.map((p) => p.model)).toContain(WEIRD);

      const byKey = parseCsv((await api('GET', `/admin/usage?tenantId=${tenantId}&groupBy=key&format=csv`)).body);
      expect(byKey[0]).toEqual(['keyId', 'requests', 'errors', 'inputTokens', 'outputTokens', 'cachedTokens', 'costUsd']);
      expect(
        byKey
          .slice(1)
          .map((l) => l[0])
          .sort(),
      ).toEqual(expect.arrayContaining([k1, k2]));
    });

    it('400 naming the parameter for a bad query', async () => {
      expectError(await api('GET', '/admin/usage?groupBy=week'), 400, { param: 'groupBy' });
      expectError(await api('GET', '/admin/usage?groupBy=day,,model'), 400, { param: 'groupBy' });
      expectError(await api('GET', '/admin/usage?tenantId=team-a'), 400, { param: 'tenantId' });
      expectError(await api('GET', '/admin/usage?keyId=123'), 400, { param: 'keyId' });
      expectError(await api('GET', '/admin/usage?from=yesterday'), 400, { param: 'from' });
      expectError(await api('GET', '/admin/usage?to=2025-13-45'), 400, { param: 'to' });
      expectError(await api('GET', '/admin/usage?format=xml'), 400, { param: 'format' });
      expectError(await api('GET', '/admin/usage?tenant=x'), 400, { param: 'tenant' });
    });
  });
});
