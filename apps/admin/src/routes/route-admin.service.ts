import { Injectable } from '@nestjs/common';
import { AdminPrincipal, confinedTenant, readScope } from '@gw/auth';
import { Errors } from '@gw/common';
import { RouteEntity } from '@gw/db';
import { RouteInput, RouteService } from '@gw/routing';
import { TenantService, tenantNotFound } from '@gw/tenancy';

/**
 * Who may do what with routes, for the admin API. Global routes are root's. A tenant admin sees only its
 * tenant's routes, and may create, change or delete them only if root set the tenant's `allowTenantRoutes`.
 * Existence first (404), permission second (403): a 403 only ever concerns the caller's own routes.
 */
@Injectable()
export class RouteAdminService {
  constructor(
    private readonly routes: RouteService,
    private readonly tenants: TenantService,
  ) {}

  /** Root: every route, or one tenant's with `tenantId`. Anyone else: its tenant's. */
  list(actor: AdminPrincipal, tenantId?: string): Promise<RouteEntity[]> {
    const scope = readScope(actor, tenantId);
    return scope === 'all' ? this.routes.listAll() : this.routes.list(scope.tenantId);
  }

  /** Root: global unless `tenantId` names a tenant. A tenant admin: always its own tenant's. */
  async create(actor: AdminPrincipal, input: RouteInput & { tenantId?: string | null }): Promise<RouteEntity> {
    const { tenantId, ...route } = input;
    const own = confinedTenant(actor);
    if (!own) {
      if (tenantId) await this.tenants.get(tenantId);
      return this.routes.create(tenantId ?? null, route);
    }
    if (tenantId === null) throw Errors.forbidden('Global routes need the root admin role.');
    if (tenantId !== undefined && tenantId !== own) throw tenantNotFound(tenantId);
    await this.assertTenantRoutesAllowed(own);
    return this.routes.create(own, route);
  }

  /** Root finds a route in any scope; anyone else only in its own tenant (else the usual 404). */
  get(actor: AdminPrincipal, id: string): Promise<RouteEntity> {
    const own = confinedTenant(actor);
    return own ? this.routes.get(own, id) : this.routes.getAnyScope(id);
  }

  async update(actor: AdminPrincipal, id: string, patch: Partial<RouteInput>): Promise<RouteEntity> {
    const r = await this.findForChange(actor, id);
    return this.routes.update(r.tenantId, id, patch);
  }

  async delete(actor: AdminPrincipal, id: string): Promise<void> {
    const r = await this.findForChange(actor, id);
    await this.routes.delete(r.tenantId, id);
  }

  private async findForChange(actor: AdminPrincipal, id: string): Promise<RouteEntity> {
    const r = await this.get(actor, id);
    const own = confinedTenant(actor);
    if (own) await this.assertTenantRoutesAllowed(own);
    return r;
  }

  private async assertTenantRoutesAllowed(tenantId: string): Promise<void> {
    if (!(await this.tenants.get(tenantId)).allowTenantRoutes) {
      throw Errors.forbidden("This tenant may not manage its own routes; the root admin can set the tenant's allowTenantRoutes.", 'tenant_routes_not_allowed');
    }
  }
}
