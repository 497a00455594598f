import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AdminPrincipal, AdminResource, CurrentAdmin, Roles, confinedTenant } from '@gw/auth';
import { Errors } from '@gw/common';
import { RouteEntity } from '@gw/db';
import { RouteService } from '@gw/routing';
import { TenantService, tenantNotFound } from '@gw/tenancy';
import { CreateRouteDto, UpdateRouteDto } from '../admin.dto';

/**
 * Routes are global, or scoped to one tenant with `tenantId` (tenant routes override global ones).
 * Global routes are root's. A tenant admin sees only its tenant's routes, and may change them only if
 * root set the tenant's `allowTenantRoutes`.
 */
@ApiTags('routes')
@ApiBearerAuth()
@Roles('root', 'admin')
@AdminResource({ type: 'route', table: 'routes' })
@Controller('admin/routes')
export class RoutesController {
  constructor(
    private readonly routes: RouteService,
    private readonly tenants: TenantService,
  ) {}

  @ApiQuery({ name: 'tenantId', required: false, description: "List this tenant's routes; omitted = all routes (a tenant admin: its own)" })
  @Get()
  list(@CurrentAdmin() actor: AdminPrincipal, @Query('tenantId') tenantId?: string) {
    if (tenantId !== undefined && !/^[0-9a-f-]{36}$/i.test(tenantId)) throw Errors.badRequest('tenantId must be a UUID', 'tenantId');
    const own = confinedTenant(actor);
    if (own) {
      if (tenantId && tenantId !== own) throw tenantNotFound(tenantId);
      return this.routes.list(own);
    }
    return tenantId ? this.routes.list(tenantId) : this.routes.listAll();
  }

  @ApiOperation({ summary: "Create a route. Root: global unless `tenantId` is given. A tenant admin: always its own tenant's." })
  @Post()
  async create(@CurrentAdmin() actor: AdminPrincipal, @Body() dto: CreateRouteDto) {
    const own = confinedTenant(actor);
    if (!own) {
      const scope = dto.tenantId ?? null;
      if (scope) await this.tenants.get(scope);
      return this.routes.create(scope, dto);
    }
    if (dto.tenantId === null) throw Errors.forbidden('Global routes need the root admin role.');
    if (dto.tenantId !== undefined && dto.tenantId !== own) throw tenantNotFound(dto.tenantId);
    await this.assertTenantRoutesAllowed(own);
    return this.routes.create(own, dto);
  }

  @Get(':id') async get(@CurrentAdmin() actor: AdminPrincipal, @Param('id', ParseUUIDPipe) id: string) {
    return this.find(actor, id);
  }
  @Patch(':id') async update(@CurrentAdmin() actor: AdminPrincipal, @Param('id', ParseUUIDPipe) id: string, @Body() dto: UpdateRouteDto) {
    const r = await this.findForChange(actor, id);
    return this.routes.update(r.tenantId, id, dto);
  }
  @Delete(':id') @HttpCode(204) async remove(@CurrentAdmin() actor: AdminPrincipal, @Param('id', ParseUUIDPipe) id: string) {
    const r = await this.findForChange(actor, id);
    await this.routes.delete(r.tenantId, id);
  }

  /** Root finds a route in any scope; anyone else only in its own tenant (else the usual 404). */
  private async find(actor: AdminPrincipal, id: string): Promise<RouteEntity> {
    const own = confinedTenant(actor);
    if (own) return this.routes.get(own, id);
    const r = (await this.routes.listAll()).find((x) => x.id === id);
    if (!r) throw Errors.notFound(`No route with id ${id}.`, 'route_not_found');
    return r;
  }

  /** Existence first (404), permission second (403): the 403 only ever concerns the caller's own routes. */
  private async findForChange(actor: AdminPrincipal, id: string): Promise<RouteEntity> {
    const r = await this.find(actor, id);
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
