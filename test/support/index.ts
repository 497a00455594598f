export * from './stack';
export * from './fake-provider';
export * from './codex';
