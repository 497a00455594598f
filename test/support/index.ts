export * from './stack';
export * from './fake-provider';
export * from './codex';
export * from './metrics';
export * from './test-database';
export * from './processes';
export * from './raw-upstream';
export * from './hostile';
