import { Module } from '@nestjs/common';
import { LedgerWriter } from './ledger.writer';
import { PriceRepository } from './price.repository';
import { PriceService } from './price.service';
import { PriceTable } from './price.table';
import { FileUsageJournal, USAGE_JOURNAL } from './usage.journal';
import { UsageRepository } from './usage.repository';
import { UsageService } from './usage.service';

/** The ledger (`usage_records`) and price overrides (`prices`): their repositories, for both planes and for limits. */
@Module({
  providers: [UsageRepository, PriceRepository],
  exports: [UsageRepository, PriceRepository],
})
export class MeteringModule {}

/** Control plane: price overrides CRUD and usage reports. */
@Module({
  imports: [MeteringModule],
  providers: [PriceService, UsageService],
  exports: [PriceService, UsageService],
})
export class MeteringAdminModule {}

/**
 * Data plane: the price table requests are priced with, and the ledger they are recorded in: `LedgerWriter`
 * (batched) behind the crash-safe `UsageJournal` (files under DATA_DIR/journal).
 */
@Module({
  imports: [MeteringModule],
  providers: [PriceTable, { provide: USAGE_JOURNAL, useClass: FileUsageJournal }, LedgerWriter],
  exports: [PriceTable, USAGE_JOURNAL, LedgerWriter, MeteringModule],
})
export class MeteringGatewayModule {}
