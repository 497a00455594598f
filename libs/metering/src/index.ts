export * from './price.service';
export * from './price.table';
export * from './ledger.writer';
export * from './usage.journal';
export * from './usage.service';
export * from './metering.module';
