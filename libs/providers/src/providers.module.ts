import { Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import type { SecretBox } from '@gw/common';
import { CompactionSeal } from './compaction/compaction.seal';
import { loadMasterKey } from './master-key';
import { ProviderCache } from './provider.cache';
import { ProviderRepository } from './provider.repository';
import { ProviderService, SECRET_BOX } from './provider.service';
import { UpstreamClient } from './upstream.client';

const compactionSeal = { provide: CompactionSeal, inject: [SECRET_BOX], useFactory: (box: SecretBox) => new CompactionSeal(box) };
const secretBox = { provide: SECRET_BOX, inject: [APP_CONFIG], useFactory: (cfg: AppConfig) => loadMasterKey(cfg) };

/** Provider CRUD with credentials sealed at rest: the admin API's, and the gateway's zero-config bootstrap's. */
@Module({
  providers: [secretBox, ProviderRepository, ProviderService],
  exports: [ProviderService, ProviderRepository, SECRET_BOX],
})
export class ProvidersModule {}

/**
 * Data plane: providers with their credentials opened, in memory (`ProviderCache`), the upstream pool
 * (`UpstreamClient`) and the seal of the compaction items the gateway makes (`CompactionSeal`).
 */
@Module({
  imports: [ProvidersModule],
  providers: [ProviderCache, UpstreamClient, compactionSeal],
  exports: [ProviderCache, UpstreamClient, CompactionSeal, ProvidersModule],
})
export class ProvidersGatewayModule {}
