import { AdminTokenEntity } from './admin-token.entity';
import { ApiKeyEntity } from './api-key.entity';
import { AuditEntryEntity } from './audit-entry.entity';
import { PriceEntity } from './price.entity';
import { ProviderEntity } from './provider.entity';
import { RouteEntity } from './route.entity';
import { SettingEntity } from './setting.entity';
import { TenantEntity } from './tenant.entity';
import { UsageRecordEntity } from './usage-record.entity';

export * from './admin-token.entity';
export * from './api-key.entity';
export * from './audit-entry.entity';
export * from './limit-settings';
export * from './price.entity';
export * from './provider.entity';
export * from './route.entity';
export * from './setting.entity';
export * from './tenant.entity';
export * from './usage-record.entity';

export const ENTITIES = [
  TenantEntity,
  ApiKeyEntity,
  ProviderEntity,
  RouteEntity,
  PriceEntity,
  UsageRecordEntity,
  SettingEntity,
  AdminTokenEntity,
  AuditEntryEntity,
];
