export * from './admin-token.service';
export * from './admin.strategy';
export * from './virtual-key.strategy';
export * from './auth.guards';
export * from './auth.module';
