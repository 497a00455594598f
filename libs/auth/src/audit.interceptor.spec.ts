import { deriveAction } from './audit.interceptor';

describe('deriveAction', () => {
  it.each([
    ['POST', '/admin/tenants', 'tenant', 'create'],
    ['PATCH', '/admin/tenants/:id', 'tenant', 'update'],
    ['DELETE', '/admin/tenants/:id', 'tenant', 'delete'],
    ['POST', '/admin/tenants/:tenantId/keys', 'key', 'create'],
    ['POST', '/admin/tenants/:tenantId/keys/:id/revoke', 'key', 'revoke'],
    ['PUT', '/admin/tenants/:tenantId/spend', 'spend', 'update'],
    ['POST', '/admin/prices', 'price', 'create'],
  ])('%s %s → %s.%s', (method, path, type, verb) => {
    expect(deriveAction(method, path)).toEqual({ type, verb });
  });
});
