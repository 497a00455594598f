import { Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { loadMasterKey } from './master-key';
import { ProviderCache } from './provider.cache';
import { ProviderRepository } from './provider.repository';
import { ProviderService, SECRET_BOX } from './provider.service';
import { UpstreamClient } from './upstream.client';

const secretBox = { provide: SECRET_BOX, inject: [APP_CONFIG], useFactory: (cfg: AppConfig) => loadMasterKey(cfg) };

/** Provider CRUD with credentials sealed at rest: the admin API's, and the gateway's zero-config bootstrap's. */
@Module({
  providers: [secretBox, ProviderRepository, ProviderService],
  exports: [ProviderService, ProviderRepository, SECRET_BOX],
})
export class ProvidersModule {}

/** Data plane: providers with their credentials opened, in memory (`ProviderCache`), and the upstream pool (`UpstreamClient`). */
@Module({
  imports: [ProvidersModule],
  providers: [ProviderCache, UpstreamClient],
  exports: [ProviderCache, UpstreamClient, ProvidersModule],
})
export class ProvidersGatewayModule {}
