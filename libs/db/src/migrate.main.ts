import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { parseConfig } from '@gw/config';
import { DataSource } from 'typeorm';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';
import { runMigrations } from './migration.runner';

/**
 * One-shot migration run for deployments (docker-compose's `migrate` service): applies pending migrations
 * to DATABASE_URL and exits, so the apps can start with DB_MIGRATE=false and never race a schema change.
 * Uses the same advisory lock as the apps, so running it beside an app that migrates is still safe.
 */
export async function migrate(log = new Logger('Migrate')): Promise<string[]> {
  const cfg = parseConfig();
  if (!cfg.databaseUrl) throw new Error('DATABASE_URL is not set: the embedded PGlite is migrated by the app itself at start.');
  const ds = new DataSource({ type: 'postgres', url: cfg.databaseUrl, entities: ENTITIES, migrations: MIGRATIONS, synchronize: false, logging: ['error'] });
  await ds.initialize();
  try {
    const applied = await runMigrations(ds, log);
    log.log(applied.length ? `${applied.length} migration(s) applied` : 'schema is up to date');
    return applied;
  } finally {
    await ds.destroy();
  }
}

if (require.main === module) {
  migrate().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`migration failed: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
