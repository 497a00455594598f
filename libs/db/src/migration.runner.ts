import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';

const MIGRATION_LOCK = 7_346_113;

/**
 * Runs pending migrations at start under a Postgres advisory lock, so that several processes
 * (gateway and admin replicas) starting together do not race; the first migrates, the rest wait.
 */
@Injectable()
export class MigrationRunner implements OnModuleInit {
  private readonly logger = new Logger('Migrations');
  private run?: Promise<void>;
  constructor(private readonly dataSource: DataSource) {}

  onModuleInit(): Promise<void> {
    return this.ready();
  }

  /**
   * Resolves once the schema is migrated. Nest runs a module's onModuleInit hooks concurrently, so
   * siblings that read tables at init (ChangeFeed) wait on this rather than on hook order.
   */
  ready(): Promise<void> {
    this.run ??= process.env.DB_MIGRATE === 'false' ? Promise.resolve() : runMigrations(this.dataSource, this.logger).then(() => undefined);
    return this.run;
  }
}

export async function runMigrations(dataSource: DataSource, logger = new Logger('Migrations')): Promise<string[]> {
  const lock = dataSource.createQueryRunner();
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const done = await dataSource.runMigrations({ transaction: 'each' });
    for (const m of done) logger.log(`applied ${m.name}`);
    return done.map((m) => m.name);
  } finally {
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await lock.release();
  }
}
