import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { ChangeFeed } from './change-feed';
import { DatabaseRepository } from './database.repository';
import { resolveDatabaseUrl } from './database-url';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';
import { MigrationRunner } from './migration.runner';
import { SettingsRepository } from './settings.repository';

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: async (cfg: AppConfig) => ({
        type: 'postgres' as const,
        url: await resolveDatabaseUrl(cfg),
        entities: ENTITIES,
        migrations: MIGRATIONS,
        migrationsRun: false,
        synchronize: false,
        logging: ['error' as const],
        extra: { max: cfg.databasePoolSize, idleTimeoutMillis: 30_000 },
      }),
    }),
    TypeOrmModule.forFeature(ENTITIES),
  ],
  providers: [MigrationRunner, ChangeFeed, SettingsRepository, DatabaseRepository],
  exports: [TypeOrmModule, ChangeFeed, SettingsRepository, DatabaseRepository],
})
export class DatabaseModule {}
