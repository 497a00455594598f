import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AdminPrincipal, AdminResource, CurrentAdmin, Roles } from '@gw/auth';
import { Errors } from '@gw/common';
import { CreateRouteDto, UpdateRouteDto } from '../admin.dto';
import { RouteAdminService } from './route-admin.service';

/**
 * Routes are global, or scoped to one tenant with `tenantId` (tenant routes override global ones).
 * Who may see and change which is `RouteAdminService`'s business.
 */
@ApiTags('routes')
@ApiBearerAuth()
@Roles('root', 'admin')
@AdminResource({ type: 'route', table: 'routes' })
@Controller('admin/routes')
export class RoutesController {
  constructor(private readonly routes: RouteAdminService) {}

  @ApiQuery({ name: 'tenantId', required: false, description: "List this tenant's routes; omitted = all routes (a tenant admin: its own)" })
  @Get()
  list(@CurrentAdmin() actor: AdminPrincipal, @Query('tenantId') tenantId?: string) {
    if (tenantId !== undefined && !/^[0-9a-f-]{36}$/i.test(tenantId)) throw Errors.badRequest('tenantId must be a UUID', 'tenantId');
    return this.routes.list(actor, tenantId);
  }

  @ApiOperation({ summary: "Create a route. Root: global unless `tenantId` is given. A tenant admin: always its own tenant's." })
  @Post()
  create(@CurrentAdmin() actor: AdminPrincipal, @Body() dto: CreateRouteDto) {
    return this.routes.create(actor, dto);
  }

  @Get(':id') get(@CurrentAdmin() actor: AdminPrincipal, @Param('id', ParseUUIDPipe) id: string) {
    return this.routes.get(actor, id);
  }
  @Patch(':id') update(@CurrentAdmin() actor: AdminPrincipal, @Param('id', ParseUUIDPipe) id: string, @Body() dto: UpdateRouteDto) {
    return this.routes.update(actor, id, dto);
  }
  @Delete(':id') @HttpCode(204) async remove(@CurrentAdmin() actor: AdminPrincipal, @Param('id', ParseUUIDPipe) id: string) {
    await this.routes.delete(actor, id);
  }
}
