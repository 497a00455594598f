import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AdminResource, Roles } from '@gw/auth';
import { PriceService } from '@gw/metering';
import { CreatePriceDto, UpdatePriceDto } from '../admin.dto';

@ApiTags('prices')
@ApiBearerAuth()
@Roles('root')
@AdminResource({ type: 'price', table: 'prices' })
@Controller('admin/prices')
export class PricesController {
  constructor(private readonly prices: PriceService) {}

  @Get() list() {
    return this.prices.list();
  }
  @Post() create(@Body() dto: CreatePriceDto) {
    return this.prices.create(dto);
  }
  @Get(':id') get(@Param('id', ParseUUIDPipe) id: string) {
    return this.prices.get(id);
  }
  @Patch(':id') update(@Param('id', ParseUUIDPipe) id: string, @Body() dto: UpdatePriceDto) {
    return this.prices.update(id, dto);
  }
  @Delete(':id') @HttpCode(204) async remove(@Param('id', ParseUUIDPipe) id: string) {
    await this.prices.delete(id);
  }
}
