import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig, AppConfigModule } from '@gw/config';
import { DatabaseModule } from '@gw/db';
import { AdminAuthModule, GatewayAdminGuard, GatewayAuthModule } from '@gw/auth';
import { LimitsModule } from '@gw/limits';
import { FileUsageJournal, LedgerWriter, PriceTable, USAGE_JOURNAL } from '@gw/metering';
import { GatewayObservabilityModule } from '@gw/observability';
import { AppEgressOptions, EgressModule, ProviderCache, UpstreamClient } from '@gw/providers';
import { EnvProvidersBootstrap, RouteTable, RoutingModule } from '@gw/routing';
import { ChatController } from './chat/chat.controller';
import { EmbeddingsController } from './embeddings/embeddings.controller';
import { CircuitsController } from './health/circuits.controller';
import { DrainService } from './health/drain.service';
import { HealthController } from './health/health.controller';
import { JournalReplayer } from './metering/journal.replayer';
import { ModelsController } from './models/models.controller';
import { ResponsesController } from './responses/responses.controller';
import { UpstreamDispatcher } from './proxy/upstream.dispatcher';
import { CIRCUIT_BREAKER_PROVIDER } from './proxy/circuit-breaker.provider';
import { TARGET_BACKOFF_PROVIDER } from './proxy/target-backoff.provider';
import { PIPELINE_PROVIDERS } from './pipeline/pipeline.providers';

@Module({})
export class GatewayModule {
  static forRoot(overrides?: Partial<AppConfig>, opts: AppEgressOptions = {}): DynamicModule {
    return {
      module: GatewayModule,
      imports: [AppConfigModule.forRoot(overrides), DatabaseModule, EgressModule.forRoot({ resolver: opts.egressResolver }), GatewayObservabilityModule.forRoot(), GatewayAuthModule, AdminAuthModule, RoutingModule, LimitsModule],
      controllers: [ChatController, ResponsesController, EmbeddingsController, ModelsController, HealthController, CircuitsController],
      providers: [ProviderCache, UpstreamClient, RouteTable, EnvProvidersBootstrap, PriceTable, { provide: USAGE_JOURNAL, useClass: FileUsageJournal }, LedgerWriter, JournalReplayer, UpstreamDispatcher, ...PIPELINE_PROVIDERS, DrainService, CIRCUIT_BREAKER_PROVIDER, TARGET_BACKOFF_PROVIDER, GatewayAdminGuard],
      exports: [LedgerWriter],
    };
  }
}
