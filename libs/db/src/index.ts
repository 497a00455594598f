export * from './entities';
export * from './migrations';
export * from './database.module';
export * from './database-url';
export * from './embedded-postgres';
export * from './migration.runner';
export * from './change-feed';
export * from './settings.repository';
