import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from '@gw/auth';
import { TenantService } from '@gw/tenancy';
import { CreateTenantDto, UpdateTenantDto } from '../admin.dto';

@ApiTags('tenants')
@ApiBearerAuth()
@UseGuards(AdminGuard)
@Controller('admin/tenants')
export class TenantsController {
  constructor(private readonly tenants: TenantService) {}

  @Get() list() {
    return this.tenants.list();
  }
  @Post() create(@Body() dto: CreateTenantDto) {
    return this.tenants.create(dto);
  }
  @Get(':id') get(@Param('id', ParseUUIDPipe) id: string) {
    return this.tenants.get(id);
  }
  @Patch(':id') update(@Param('id', ParseUUIDPipe) id: string, @Body() dto: UpdateTenantDto) {
    return this.tenants.update(id, dto);
  }
  @Delete(':id') @HttpCode(204) async remove(@Param('id', ParseUUIDPipe) id: string) {
    await this.tenants.delete(id);
  }
}
