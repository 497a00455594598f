import { Module } from '@nestjs/common';
import { ApiKeyRepository } from './api-key.repository';
import { ApiKeyService } from './api-key.service';
import { TenantRepository } from './tenant.repository';
import { TenantService } from './tenant.service';

/** Tenants and keys. The gateway adds `KeyCache` (see libs/auth); the admin app does not need it. */
@Module({
  providers: [TenantRepository, ApiKeyRepository, TenantService, ApiKeyService],
  exports: [TenantService, ApiKeyService, TenantRepository, ApiKeyRepository],
})
export class TenancyModule {}
