import { DynamicModule, Inject, MiddlewareConsumer, Module, NestModule, RequestMethod } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { register } from 'prom-client';
import { GatewayMetricsController } from './cluster-metrics.controller';
import { GATEWAY_METRIC_PROVIDERS, GatewayMetrics } from './gateway.metrics';
import { ALL_ROUTES_PATH, HTTP_METRIC_PROVIDERS, HttpMetrics, OBSERVED_APP, ObservedApp } from './http.metrics';
import { metricsAuth } from './metrics.auth';
import { requestLogMiddleware, requestLoggerModule } from './request-log.config';

/**
 * prom-client has one registry per process. When gateway and admin share a process (`npm start`),
 * process metrics are collected once and both /metrics endpoints show the same registry; the `app`
 * label of the HTTP metrics tells the two apart.
 */
function prometheus(app: ObservedApp): DynamicModule {
  const first = register.getSingleMetric('process_cpu_user_seconds_total') === undefined;
  // The gateway's controller answers for every worker when GATEWAY_WORKERS > 1.
  const controller = app === 'gateway' ? { controller: GatewayMetricsController } : {};
  return PrometheusModule.register({ path: '/metrics', defaultMetrics: { enabled: first }, ...controller });
}

function common(app: ObservedApp) {
  return {
    // The gateway writes its request lines itself (no pino-http, no AsyncLocalStorage: see requestLogMiddleware).
    imports: [prometheus(app), requestLoggerModule(app, { pinoHttp: app === 'admin' })],
    providers: [{ provide: OBSERVED_APP, useValue: app }, ...HTTP_METRIC_PROVIDERS, HttpMetrics],
  };
}

const ALL_ROUTES = { path: ALL_ROUTES_PATH, method: RequestMethod.ALL };
const METRICS_ROUTE = { path: 'metrics', method: RequestMethod.GET };

/** `GET /metrics` (behind METRICS_TOKEN when set) with process metrics, the gateway's own, HTTP metrics and JSON request logs. */
@Module({})
export class GatewayObservabilityModule implements NestModule {
  constructor(
    private readonly http: HttpMetrics,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  static forRoot(): DynamicModule {
    const c = common('gateway');
    return {
      module: GatewayObservabilityModule,
      // Global: libs that report to the gateway's metrics bind their observer ports to GatewayMetrics
      // (LimitsGatewayModule); importing this module there would register every metric a second time.
      global: true,
      imports: c.imports,
      providers: [...c.providers, ...GATEWAY_METRIC_PROVIDERS, GatewayMetrics],
      exports: [GatewayMetrics, HttpMetrics],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(this.http.middleware, requestLogMiddleware('gateway', this.cfg.logLevel, this.cfg.logFormat)).forRoutes(ALL_ROUTES);
    consumer.apply(metricsAuth(this.cfg.metricsToken)).forRoutes(METRICS_ROUTE);
  }
}

/** The admin app's metrics endpoint (HTTP and process metrics; behind METRICS_TOKEN when set) and JSON request logs. */
@Module({})
export class AdminObservabilityModule implements NestModule {
  constructor(
    private readonly http: HttpMetrics,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  static forRoot(): DynamicModule {
    const c = common('admin');
    return { module: AdminObservabilityModule, imports: c.imports, providers: c.providers };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(this.http.middleware).forRoutes(ALL_ROUTES);
    consumer.apply(metricsAuth(this.cfg.metricsToken)).forRoutes(METRICS_ROUTE);
  }
}
