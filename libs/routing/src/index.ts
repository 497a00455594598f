export * from './route.repository';
export * from './route.service';
export * from './route.table';
export * from './affinity';
export * from './env-providers.bootstrap';
export * from './routing.module';
