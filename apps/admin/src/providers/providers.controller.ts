import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AdminResource, Roles } from '@gw/auth';
import { ProviderService } from '@gw/providers';
import { CreateProviderDto, UpdateProviderDto } from '../admin.dto';

@ApiTags('providers')
@ApiBearerAuth()
@Roles('root')
@AdminResource({ type: 'provider', table: 'providers' })
@Controller('admin/providers')
export class ProvidersController {
  constructor(private readonly providers: ProviderService) {}

  @Get() list() {
    return this.providers.list();
  }
  @Post() create(@Body() dto: CreateProviderDto) {
    return this.providers.create(dto);
  }
  @Get(':id') get(@Param('id', ParseUUIDPipe) id: string) {
    return this.providers.get(id);
  }
  @Patch(':id') update(@Param('id', ParseUUIDPipe) id: string, @Body() dto: UpdateProviderDto) {
    return this.providers.update(id, dto);
  }
  @Delete(':id') @HttpCode(204) async remove(@Param('id', ParseUUIDPipe) id: string) {
    await this.providers.delete(id);
  }
}
