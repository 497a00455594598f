import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from '@gw/auth';
import { ApiKeyService } from '@gw/tenancy';
import { CreateKeyDto, UpdateKeyDto } from '../admin.dto';

const toDate = (v: string | null | undefined) => (v === undefined ? undefined : v === null ? null : new Date(v));

@ApiTags('keys')
@ApiBearerAuth()
@UseGuards(AdminGuard)
@Controller('admin/tenants/:tenantId/keys')
export class KeysController {
  constructor(private readonly keys: ApiKeyService) {}

  @Get() list(@Param('tenantId', ParseUUIDPipe) tenantId: string) {
    return this.keys.list(tenantId);
  }

  @ApiOperation({ summary: 'Create a key. The response carries `secret`: shown this once, stored only as a hash.' })
  @Post()
  async create(@Param('tenantId', ParseUUIDPipe) tenantId: string, @Body() dto: CreateKeyDto) {
    const { key, secret } = await this.keys.create(tenantId, { ...dto, expiresAt: toDate(dto.expiresAt) });
    return { ...key, secret };
  }

  @Get(':id') get(@Param('tenantId', ParseUUIDPipe) tenantId: string, @Param('id', ParseUUIDPipe) id: string) {
    return this.keys.get(tenantId, id);
  }
  @Patch(':id') update(@Param('tenantId', ParseUUIDPipe) tenantId: string, @Param('id', ParseUUIDPipe) id: string, @Body() dto: UpdateKeyDto) {
    return this.keys.update(tenantId, id, { ...dto, expiresAt: toDate(dto.expiresAt) });
  }
  @ApiOperation({ summary: 'Revoke a key: it stops working on every gateway within CACHE_REFRESH_MS (default 0.5 s).' })
  @Post(':id/revoke') @HttpCode(200) revoke(@Param('tenantId', ParseUUIDPipe) tenantId: string, @Param('id', ParseUUIDPipe) id: string) {
    return this.keys.revoke(tenantId, id);
  }
  @Delete(':id') @HttpCode(204) async remove(@Param('tenantId', ParseUUIDPipe) tenantId: string, @Param('id', ParseUUIDPipe) id: string) {
    await this.keys.delete(tenantId, id);
  }
}
