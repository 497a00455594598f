import { Injectable } from '@nestjs/common';
import { AdminPrincipal, confinedTenant } from '@gw/auth';
import { ApiKeyInput, ApiKeyService, ApiKeyView } from '@gw/tenancy';

/**
 * Key changes on behalf of an admin: root sets any limits (it sets the tenant's in the first place); a
 * tenant's own admin only within the tenant's (400 `limit_exceeds_tenant_quota`). Which tenant the caller
 * may touch at all is the access guard's (`@TenantScoped`).
 */
@Injectable()
export class KeyAdminService {
  constructor(private readonly keys: ApiKeyService) {}

  create(actor: AdminPrincipal, tenantId: string, input: ApiKeyInput): Promise<{ key: ApiKeyView; secret: string }> {
    return this.keys.create(tenantId, input, { withinTenantQuota: boundByQuota(actor) });
  }

  update(actor: AdminPrincipal, tenantId: string, id: string, patch: Partial<ApiKeyInput>): Promise<ApiKeyView> {
    return this.keys.update(tenantId, id, patch, { withinTenantQuota: boundByQuota(actor) });
  }
}

function boundByQuota(actor: AdminPrincipal): boolean {
  return confinedTenant(actor) !== null;
}
