import { Module } from '@nestjs/common';
import { PriceService } from './price.service';
import { UsageService } from './usage.service';

/** Admin side: prices and usage reports. The gateway adds `PriceTable` and `LedgerWriter`. */
@Module({
  providers: [PriceService, UsageService],
  exports: [PriceService, UsageService],
})
export class MeteringModule {}
