import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig, AppConfigModule } from '@gw/config';
import { DatabaseModule } from '@gw/db';
import { GatewayAuthModule } from '@gw/auth';
import { LimitsGatewayModule } from '@gw/limits';
import { MeteringGatewayModule } from '@gw/metering';
import { GatewayObservabilityModule } from '@gw/observability';
import { AppEgressOptions, EgressModule } from '@gw/providers';
import { RoutingGatewayModule } from '@gw/routing';
import { ChatController } from './chat/chat.controller';
import { EmbeddingsController } from './embeddings/embeddings.controller';
import { CircuitsController } from './health/circuits.controller';
import { DrainService } from './health/drain.service';
import { DataPlaneEdge } from './edge/data-plane.edge';
import { HealthController } from './health/health.controller';
import { JournalReplayer } from './metering/journal.replayer';
import { ModelsController } from './models/models.controller';
import { ResponsesCompactController } from './responses/responses-compact.controller';
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
      // Lib internals come from the libs' data-plane modules; the providers below are this app's own classes.
      imports: [
        AppConfigModule.forRoot(overrides),
        DatabaseModule,
        EgressModule.forRoot({ resolver: opts.egressResolver }),
        GatewayObservabilityModule.forRoot(),
        GatewayAuthModule,
        RoutingGatewayModule,
        MeteringGatewayModule,
        LimitsGatewayModule,
      ],
      controllers: [
        ChatController,
        ResponsesController,
        ResponsesCompactController,
        EmbeddingsController,
        ModelsController,
        HealthController,
        CircuitsController,
      ],
      providers: [DataPlaneEdge, JournalReplayer, UpstreamDispatcher, ...PIPELINE_PROVIDERS, DrainService, CIRCUIT_BREAKER_PROVIDER, TARGET_BACKOFF_PROVIDER],
      exports: [MeteringGatewayModule],
    };
  }
}
