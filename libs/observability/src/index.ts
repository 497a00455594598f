export * from './gateway.metrics';
export * from './http.metrics';
export * from './request-log.config';
export * from './metrics.auth';
export * from './observability.module';
export * from './cluster.metrics';
export * from './cluster-metrics.controller';
export * from './start-banner';
