export * from './tenant.repository';
export * from './api-key.repository';
export * from './tenant.service';
export * from './api-key.service';
export * from './key-cache';
export * from './tenant-quota.policy';
export * from './tenancy.module';
