export * from './openai-error';
export * from './openai-exception.filter';
export * from './request-id';
export * from './crypto';
export * from './glob';
export * from './http-app.setup';
export * from './json.guards';
export * from './client-address';
