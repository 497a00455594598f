import { Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { loadMasterKey } from './master-key';
import { ProviderRepository } from './provider.repository';
import { ProviderService, SECRET_BOX } from './provider.service';

const secretBox = { provide: SECRET_BOX, inject: [APP_CONFIG], useFactory: (cfg: AppConfig) => loadMasterKey(cfg) };

/** Admin side: provider CRUD with credentials sealed at rest. */
@Module({
  providers: [secretBox, ProviderRepository, ProviderService],
  exports: [ProviderService, ProviderRepository, SECRET_BOX],
})
export class ProvidersModule {}
