import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminPrincipal, AdminResource, CurrentAdmin, Roles, TenantScoped, confinedTenant } from '@gw/auth';
import { TenantService } from '@gw/tenancy';
import { CreateTenantDto, UpdateTenantDto } from '../admin.dto';

/** Creating, changing and deleting tenants (their limits and flags) is root's; a tenant's own tokens may read it. */
@ApiTags('tenants')
@ApiBearerAuth()
@TenantScoped('id')
@AdminResource({ type: 'tenant', table: 'tenants' })
@Controller('admin/tenants')
export class TenantsController {
  constructor(private readonly tenants: TenantService) {}

  @ApiOperation({ summary: 'Every tenant for root; just its own for a tenant admin or viewer.' })
  @Roles('root', 'admin', 'viewer')
  @Get()
  async list(@CurrentAdmin() actor: AdminPrincipal) {
    const own = confinedTenant(actor);
    return own ? [await this.tenants.get(own)] : this.tenants.list();
  }
  @Post() create(@Body() dto: CreateTenantDto) {
    return this.tenants.create(dto);
  }
  @Roles('root', 'admin', 'viewer')
  @Get(':id')
  get(@Param('id', ParseUUIDPipe) id: string) {
    return this.tenants.get(id);
  }
  @Patch(':id') update(@Param('id', ParseUUIDPipe) id: string, @Body() dto: UpdateTenantDto) {
    return this.tenants.update(id, dto);
  }
  @Delete(':id') @HttpCode(204) async remove(@Param('id', ParseUUIDPipe) id: string) {
    await this.tenants.delete(id);
  }
}
