import { DynamicModule, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { register } from 'prom-client';
import { GATEWAY_METRIC_PROVIDERS, GatewayMetrics } from './gateway.metrics';

/**
 * prom-client has one registry per process. When gateway and admin share a process (`npm start`),
 * process metrics are collected once and both /metrics endpoints show the same registry.
 */
function prometheus(): DynamicModule {
  const first = register.getSingleMetric('process_cpu_user_seconds_total') === undefined;
  return PrometheusModule.register({ path: '/metrics', defaultMetrics: { enabled: first } });
}

/** `GET /metrics` with process metrics, plus the gateway's own. */
@Module({})
export class GatewayObservabilityModule {
  static forRoot(): DynamicModule {
    return {
      module: GatewayObservabilityModule,
      imports: [prometheus()],
      providers: [...GATEWAY_METRIC_PROVIDERS, GatewayMetrics],
      exports: [GatewayMetrics],
    };
  }
}

/** The admin app's metrics endpoint. */
@Module({})
export class AdminObservabilityModule {
  static forRoot(): DynamicModule {
    return { module: AdminObservabilityModule, imports: [prometheus()] };
  }
}
