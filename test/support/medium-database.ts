import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { ENTITIES, MIGRATIONS, runMigrations, startEmbeddedPostgres } from '@gw/db';
import { copyPgliteTemplate, createTestDatabase } from './test-database';

export interface MediumDatabase {
  /** Initialized, on a migrated schema of this file's own. */
  dataSource: DataSource;
  url: string;
  /** Destroys the DataSource and drops the database (or stops and removes the PGlite copy). */
  close(): Promise<void>;
}

/**
 * A migrated database of the calling test file's own, for `*.medium-spec.ts` (services and repositories against
 * a real database, no HTTP): a copy of the run's template (template.global-setup.ts) on TEST_DATABASE_URL's
 * server, else a copied PGlite directory. Without a template (a config that does not name the global setup)
 * it migrates a fresh one, slower but the same.
 */
export async function mediumDatabase(): Promise<MediumDatabase> {
  let url: string;
  let migrated: boolean;
  let drop: () => Promise<void>;
  const own = await createTestDatabase('gw_medium', { migrated: true });
  if (own) {
    ({ url, migrated } = own);
    drop = own.drop;
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'gw-medium-'));
    migrated = copyPgliteTemplate(dir);
    const pg = await startEmbeddedPostgres(dir);
    url = pg.url;
    drop = async () => {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  // No query logging: a test that provokes a constraint error sees it as the rejection it asserts on.
  const dataSource = new DataSource({ type: 'postgres', url, entities: ENTITIES, migrations: MIGRATIONS, synchronize: false, logging: false });
  try {
    await dataSource.initialize();
    if (!migrated) await runMigrations(dataSource);
  } catch (e) {
    if (dataSource.isInitialized) await dataSource.destroy().catch(() => undefined);
    await drop().catch(() => undefined);
    throw e;
  }
  let closed = false;
  return {
    dataSource,
    url,
    async close() {
      if (closed) return;
      closed = true;
      await dataSource.destroy().catch(() => undefined);
      await drop();
    },
  };
}
