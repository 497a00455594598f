import { Stack, TEST_ADMIN_TOKEN, startStack } from '@gw/testing';

jest.setTimeout(30_000);

/** Its own stack: the block it provokes applies to 127.0.0.1, i.e. to every later request of the file. */
describe('admin API: failed authentication is rate-limited per source address', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('10 failures in a minute → 429 with Retry-After, even for the right token; the gateway is unaffected', async () => {
    const tenant = await stack.api('POST', '/admin/tenants', { name: 'data-plane' });
    const key = await stack.api('POST', `/admin/tenants/${tenant.body.id}/keys`, { name: 'k' });
    // Requests without credentials are not guesses and do not count.
    for (let i = 0; i < 12; i++) {
      const r = await fetch(`${stack.adminUrl}/admin/tenants`);
      expect(r.status).toBe(401);
    }
    for (let i = 0; i < 6; i++) expect((await stack.api('GET', '/admin/tenants', undefined, `wrong-token-${i}`)).status).toBe(401);
    // Only the Authorization header carries a credential: ?access_token= is no credential at all, and no guess.
    for (let i = 6; i < 9; i++) {
      const r = await fetch(`${stack.adminUrl}/admin/tenants?access_token=wrong-token-${i}`);
      expect(r.status).toBe(401);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('missing_api_key');
    }
    for (let i = 6; i < 9; i++) expect((await stack.api('GET', '/admin/tenants', undefined, `wrong-token-${i}`)).status).toBe(401);
    // A success in between does not reset the count.
    const t = await stack.api('POST', '/admin/tenants', { name: 'still-fine' });
    expect(t.status).toBe(201);
    const tenth = await stack.api('GET', '/admin/tenants', undefined, 'gwa-wrong-token-10');
    expect(tenth.status).toBe(401);

    const blocked = await stack.api('GET', '/admin/tenants', undefined, 'wrong-token-11');
    expect(blocked.status).toBe(429);
    expect(blocked.body.error).toMatchObject({ code: 'too_many_auth_failures', type: 'rate_limit_exceeded' });
    const retryAfter = Number(blocked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(60);
    expect(retryAfter).toBeLessThanOrEqual(300);
    const root = await stack.api('GET', '/admin/tenants', undefined, TEST_ADMIN_TOKEN);
    expect(root.status).toBe(429);

    // the data plane has its own credentials and is not blocked
    expect((await fetch(`${stack.baseURL}/models`, { headers: { authorization: `Bearer ${key.body.secret}` } })).status).toBe(200);
    expect((await fetch(`${stack.adminUrl}/healthz`)).status).toBe(200);
  });
});
