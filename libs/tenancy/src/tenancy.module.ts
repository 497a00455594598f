import { Module } from '@nestjs/common';
import { ApiKeyRepository } from './api-key.repository';
import { ApiKeyService } from './api-key.service';
import { KeyCache } from './key-cache';
import { TenantRepository } from './tenant.repository';
import { TenantService } from './tenant.service';

/** Tenants and keys: repositories (tenant id first) and services, for both planes. */
@Module({
  providers: [TenantRepository, ApiKeyRepository, TenantService, ApiKeyService],
  exports: [TenantService, ApiKeyService, TenantRepository, ApiKeyRepository],
})
export class TenancyModule {}

/** Data plane: the whole set of usable keys in memory (`KeyCache`), which authentication looks keys up in. */
@Module({
  imports: [TenancyModule],
  providers: [KeyCache],
  exports: [KeyCache, TenancyModule],
})
export class TenancyGatewayModule {}
