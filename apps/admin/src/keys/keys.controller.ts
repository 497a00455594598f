import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminPrincipal, AdminResource, CurrentAdmin, Roles, TenantScoped } from '@gw/auth';
import { ApiKeyService } from '@gw/tenancy';
import { CreateKeyDto, UpdateKeyDto } from '../admin.dto';
import { KeyAdminService } from './key-admin.service';

const toDate = (v: string | null | undefined) => (v === undefined ? undefined : v === null ? null : new Date(v));

/** A tenant's keys: root or the tenant's admins manage them; its viewers may list them. */
@ApiTags('keys')
@ApiBearerAuth()
@Roles('root', 'admin')
@TenantScoped()
@AdminResource({ type: 'key', table: 'api_keys' })
@Controller('admin/tenants/:tenantId/keys')
export class KeysController {
  constructor(
    private readonly keys: ApiKeyService,
    private readonly admin: KeyAdminService,
  ) {}

  @Roles('root', 'admin', 'viewer')
  @Get()
  list(@Param('tenantId', ParseUUIDPipe) tenantId: string) {
    return this.keys.list(tenantId);
  }

  @ApiOperation({
    summary: 'Create a key. The response carries `secret`: shown this once, stored only as a hash.',
    description: "A tenant admin may not give a key a limit above the tenant's own (400 limit_exceeds_tenant_quota).",
  })
  @Post()
  async create(@Param('tenantId', ParseUUIDPipe) tenantId: string, @CurrentAdmin() actor: AdminPrincipal, @Body() dto: CreateKeyDto) {
    // eslint-disable-next-line @typescript-eslint/no-misused-spread -- a DTO is a plain data class: the spread copies its fields
    const { key, secret } = await this.admin.create(actor, tenantId, { ...dto, expiresAt: toDate(dto.expiresAt) });
    return { ...key, secret };
  }

  @Roles('root', 'admin', 'viewer')
  @Get(':id')
  get(@Param('tenantId', ParseUUIDPipe) tenantId: string, @Param('id', ParseUUIDPipe) id: string) {
    return this.keys.get(tenantId, id);
  }
  @ApiOperation({ summary: "Change a key. A tenant admin may not raise its limits above the tenant's." })
  @Patch(':id')
  update(
    @Param('tenantId', ParseUUIDPipe) tenantId: string,
    @Param('id', ParseUUIDPipe) id: string,
    @CurrentAdmin() actor: AdminPrincipal,
    @Body() dto: UpdateKeyDto,
  ) {
    // eslint-disable-next-line @typescript-eslint/no-misused-spread -- a DTO is a plain data class: the spread copies its fields
    return this.admin.update(actor, tenantId, id, { ...dto, expiresAt: toDate(dto.expiresAt) });
  }
  @ApiOperation({ summary: 'Revoke a key: it stops working on every gateway within CACHE_REFRESH_MS (default 0.5 s).' })
  @Post(':id/revoke')
  @HttpCode(200)
  revoke(@Param('tenantId', ParseUUIDPipe) tenantId: string, @Param('id', ParseUUIDPipe) id: string) {
    return this.keys.revoke(tenantId, id);
  }
  @Delete(':id') @HttpCode(204) async remove(@Param('tenantId', ParseUUIDPipe) tenantId: string, @Param('id', ParseUUIDPipe) id: string) {
    await this.keys.delete(tenantId, id);
  }
}
