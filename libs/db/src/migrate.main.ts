import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { parseConfig } from '@gw/config';
import { DataSource } from 'typeorm';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';
import { runMigrations } from './migration.runner';

function dataSource(): DataSource {
  const cfg = parseConfig();
  if (!cfg.databaseUrl) throw new Error('DATABASE_URL is not set: the embedded PGlite is migrated by the app itself at start.');
  return new DataSource({ type: 'postgres', url: cfg.databaseUrl, entities: ENTITIES, migrations: MIGRATIONS, synchronize: false, logging: ['error'] });
}

/**
 * One-shot migration run for deployments (docker-compose's `migrate` service, the Kubernetes migrate Job):
 * applies pending migrations to DATABASE_URL and exits, so the apps can start with DB_MIGRATE=false and never
 * race a schema change. Uses the same advisory lock as the apps, so running it beside an app that migrates is still safe.
 */
export async function migrate(log = new Logger('Migrate')): Promise<string[]> {
  const ds = dataSource();
  await ds.initialize();
  try {
    const applied = await runMigrations(ds, log);
    log.log(applied.length ? `${applied.length} migration(s) applied` : 'schema is up to date');
    return applied;
  } finally {
    await ds.destroy();
  }
}

/** The migrations of this build that the database has not applied yet, read without applying or creating anything. */
export async function pendingMigrations(): Promise<string[]> {
  const ds = dataSource();
  await ds.initialize();
  try {
    const table = ds.options.migrationsTableName ?? 'migrations';
    const [{ exists }] = await ds.query<{ exists: boolean }[]>(`SELECT to_regclass($1) IS NOT NULL AS exists`, [table]);
    const done = new Set(exists ? (await ds.query<{ name: string }[]>(`SELECT name FROM "${table}"`)).map((r) => r.name) : []);
    return ds.migrations.map((m) => m.name ?? m.constructor.name).filter((n) => !done.has(n));
  } finally {
    await ds.destroy();
  }
}

/**
 * `--wait`: returns once the database has every migration of this build, applying none (the Kubernetes apps'
 * init container: a new release's pods wait for its migrate Job instead of running on the old schema). A database
 * that does not answer yet is waited for too. `checks` bounds the attempts (tests); unbounded by default.
 */
export async function waitForMigrations(log = new Logger('Migrate'), opts: { intervalMs?: number; checks?: number } = {}): Promise<void> {
  const intervalMs = opts.intervalMs ?? 2_000;
  let said = '';
  for (let i = 1; ; i++) {
    let state: string;
    try {
      const pending = await pendingMigrations();
      if (!pending.length) {
        log.log('schema is up to date');
        return;
      }
      state = `waiting for ${pending.length} migration(s) (the migrate Job applies them): ${pending.join(', ')}`;
    } catch (e) {
      if ((e as Error).message.startsWith('DATABASE_URL is not set')) throw e;
      state = `waiting for the database: ${(e as Error).message}`;
    }
    // Said once per change, not every attempt.
    if (state !== said) log.log((said = state));
    if (opts.checks !== undefined && i >= opts.checks) throw new Error(state);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

if (require.main === module) {
  const wait = process.argv.includes('--wait');
  (wait ? waitForMigrations() : migrate()).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${wait ? 'waiting for migrations' : 'migration'} failed: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
