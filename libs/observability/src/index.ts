export * from './gateway.metrics';
export * from './observability.module';
