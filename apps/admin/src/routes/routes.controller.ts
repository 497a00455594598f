import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from '@gw/auth';
import { Errors } from '@gw/common';
import { RouteService } from '@gw/routing';
import { TenantService } from '@gw/tenancy';
import { CreateRouteDto, UpdateRouteDto } from '../admin.dto';

/** Routes are global, or scoped to one tenant with `tenantId` (tenant routes override global ones). */
@ApiTags('routes')
@ApiBearerAuth()
@UseGuards(AdminGuard)
@Controller('admin/routes')
export class RoutesController {
  constructor(
    private readonly routes: RouteService,
    private readonly tenants: TenantService,
  ) {}

  @ApiQuery({ name: 'tenantId', required: false, description: 'List this tenant\'s routes; omitted = all routes' })
  @Get()
  list(@Query('tenantId') tenantId?: string) {
    if (tenantId !== undefined && !/^[0-9a-f-]{36}$/i.test(tenantId)) throw Errors.badRequest('tenantId must be a UUID', 'tenantId');
    return tenantId ? this.routes.list(tenantId) : this.routes.listAll();
  }

  @Post()
  async create(@Body() dto: CreateRouteDto) {
    const scope = dto.tenantId ?? null;
    if (scope) await this.tenants.get(scope);
    return this.routes.create(scope, dto);
  }

  @Get(':id') async get(@Param('id', ParseUUIDPipe) id: string) {
    return this.routes.get(await this.scopeOf(id), id);
  }
  @Patch(':id') async update(@Param('id', ParseUUIDPipe) id: string, @Body() dto: UpdateRouteDto) {
    return this.routes.update(await this.scopeOf(id), id, dto);
  }
  @Delete(':id') @HttpCode(204) async remove(@Param('id', ParseUUIDPipe) id: string) {
    await this.routes.delete(await this.scopeOf(id), id);
  }

  private async scopeOf(id: string): Promise<string | null> {
    const all = await this.routes.listAll();
    const r = all.find((x) => x.id === id);
    if (!r) throw Errors.notFound(`No route with id ${id}.`, 'route_not_found');
    return r.tenantId;
  }
}
