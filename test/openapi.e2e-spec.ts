import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack, startStack } from '@gw/testing';
import { generateOpenApi, openApiJson } from '../apps/admin/src/openapi';

jest.setTimeout(60_000);

const COMMITTED = join(__dirname, '..', 'docs', 'openapi.json');

/** Fails with the fix in the message, and the first differing line so the reviewer sees what moved. */
function expectSameDocument(actual: string, expected: string, what: string): void {
  if (actual === expected) return;
  const a = actual.split('\n');
  const e = expected.split('\n');
  const i = a.findIndex((line, n) => line !== e[n]);
  throw new Error(
    `${what}: docs/openapi.json is out of date — run \`npm run openapi\` and commit docs/openapi.json.\n` +
      `First difference at line ${i + 1}:\n  committed: ${JSON.stringify(e[i])}\n  generated: ${JSON.stringify(a[i])}`,
  );
}

describe('OpenAPI document of the admin API', () => {
  let stack: Stack;
  let served: any;

  beforeAll(async () => {
    stack = await startStack();
    const res = await fetch(`${stack.adminUrl}/admin/docs/openapi.json`);
    expect(res.status).toBe(200);
    served = await res.json();
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('serves Swagger UI at /admin/docs, without an admin token', async () => {
    const res = await fetch(`${stack.adminUrl}/admin/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toMatch(/swagger-ui/i);
  });

  it('describes every admin resource, the bearer scheme and the write-only credential', () => {
    expect(served.openapi).toMatch(/^3\./);
    expect(Object.keys(served.paths)).toEqual(
      expect.arrayContaining([
        '/admin/tenants',
        '/admin/tenants/{id}',
        '/admin/tenants/{tenantId}/keys',
        '/admin/tenants/{tenantId}/keys/{id}',
        '/admin/tenants/{tenantId}/keys/{id}/revoke',
        '/admin/providers',
        '/admin/providers/{id}',
        '/admin/routes',
        '/admin/routes/{id}',
        '/admin/prices',
        '/admin/prices/{id}',
        '/admin/usage',
      ]),
    );
    expect(served.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(served.components.schemas.CreateProviderDto.properties.credential).toMatchObject({ type: 'string', writeOnly: true });
    expect(served.components.schemas.RouteTargetDto.required).toContain('providerId');
    const usageParams = served.paths['/admin/usage'].get.parameters.map((p: any) => p.name);
    expect(usageParams).toEqual(expect.arrayContaining(['tenantId', 'keyId', 'model', 'from', 'to', 'groupBy', 'format']));
  });

  it('equals the committed docs/openapi.json', () => {
    expect(existsSync(COMMITTED)).toBe(true);
    expectSameDocument(openApiJson(served), readFileSync(COMMITTED, 'utf8'), 'the running admin app');
  });

  it('is what `npm run openapi` generates without a database (Nest preview mode)', async () => {
    const offline = openApiJson(await generateOpenApi());
    expect(offline).toBe(openApiJson(served));
    expectSameDocument(offline, readFileSync(COMMITTED, 'utf8'), 'npm run openapi');
  });
});
