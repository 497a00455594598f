import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminPrincipal, AdminResource, AdminTokenService, CurrentAdmin, Roles, TenantScoped } from '@gw/auth';
import { AdminTokenDto, AdminTokenQueryDto, CreateAdminTokenDto, CreateTenantTokenDto, CreatedAdminTokenDto } from './tokens.dto';

const toDate = (v: string | null | undefined) => (v ? new Date(v) : null);

/** Every admin token, root tokens included: root only. */
@ApiTags('tokens')
@ApiBearerAuth()
@Roles('root')
@AdminResource({ type: 'token', table: 'admin_tokens' })
@Controller('admin/tokens')
export class TokensController {
  constructor(private readonly tokens: AdminTokenService) {}

  @ApiOkResponse({ type: [AdminTokenDto] })
  @Get()
  list(@Query() q: AdminTokenQueryDto) {
    return this.tokens.list(q.tenantId ?? null);
  }

  @ApiOperation({ summary: 'Create an admin token for any tenant, or a root token. The response carries `secret`, shown this once.' })
  @ApiCreatedResponse({ type: CreatedAdminTokenDto })
  @Post()
  async create(@CurrentAdmin() actor: AdminPrincipal, @Body() dto: CreateAdminTokenDto) {
    const { token, secret } = await this.tokens.create(dto.tenantId ?? null, { role: dto.role, name: dto.name, expiresAt: toDate(dto.expiresAt) }, actor);
    return { ...token, secret };
  }

  @ApiOkResponse({ type: AdminTokenDto })
  @Get(':id')
  get(@Param('id', ParseUUIDPipe) id: string) {
    return this.tokens.get(null, id);
  }

  @ApiOperation({ summary: 'Revoke a token: refused from the next request on, on every admin replica.' })
  @ApiOkResponse({ type: AdminTokenDto })
  @Post(':id/revoke')
  @HttpCode(200)
  revoke(@Param('id', ParseUUIDPipe) id: string) {
    return this.tokens.revoke(null, id);
  }

  @Delete(':id') @HttpCode(204) async remove(@Param('id', ParseUUIDPipe) id: string) {
    await this.tokens.delete(null, id);
  }
}

/** One tenant's admin and viewer tokens: root, or that tenant's admins (self-service for the team). */
@ApiTags('tokens')
@ApiBearerAuth()
@Roles('root', 'admin')
@TenantScoped()
@AdminResource({ type: 'token', table: 'admin_tokens' })
@Controller('admin/tenants/:tenantId/tokens')
export class TenantTokensController {
  constructor(private readonly tokens: AdminTokenService) {}

  @ApiOkResponse({ type: [AdminTokenDto] })
  @Get()
  list(@Param('tenantId', ParseUUIDPipe) tenantId: string) {
    return this.tokens.list(tenantId);
  }

  @ApiOperation({ summary: 'Create an admin or viewer token for this tenant. The response carries `secret`, shown this once.' })
  @ApiCreatedResponse({ type: CreatedAdminTokenDto })
  @Post()
  async create(@Param('tenantId', ParseUUIDPipe) tenantId: string, @CurrentAdmin() actor: AdminPrincipal, @Body() dto: CreateTenantTokenDto) {
    const { token, secret } = await this.tokens.create(tenantId, { role: dto.role, name: dto.name, expiresAt: toDate(dto.expiresAt) }, actor);
    return { ...token, secret };
  }

  @ApiOkResponse({ type: AdminTokenDto })
  @Get(':id')
  get(@Param('tenantId', ParseUUIDPipe) tenantId: string, @Param('id', ParseUUIDPipe) id: string) {
    return this.tokens.get(tenantId, id);
  }

  @ApiOkResponse({ type: AdminTokenDto })
  @Post(':id/revoke')
  @HttpCode(200)
  revoke(@Param('tenantId', ParseUUIDPipe) tenantId: string, @Param('id', ParseUUIDPipe) id: string) {
    return this.tokens.revoke(tenantId, id);
  }

  @Delete(':id') @HttpCode(204) async remove(@Param('tenantId', ParseUUIDPipe) tenantId: string, @Param('id', ParseUUIDPipe) id: string) {
    await this.tokens.delete(tenantId, id);
  }
}
