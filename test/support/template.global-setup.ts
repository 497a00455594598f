import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
// Relative, not `@gw/db`: jest loads globalSetup with plain require, without the projects' moduleNameMapper.
import { MIGRATIONS } from '../../libs/db/src/migrations';
import { runMigrations } from '../../libs/db/src/migration.runner';
import { startEmbeddedPostgres } from '../../libs/db/src/embedded-postgres';
import { TEMPLATE_DB_ENV, TEMPLATE_DIR_ENV } from './template.env';

const quiet = { log() {} } as unknown as Logger;

async function migrate(url: string): Promise<void> {
  const ds = new DataSource({ type: 'postgres', url, migrations: MIGRATIONS, synchronize: false, logging: ['error'] });
  await ds.initialize();
  try {
    await runMigrations(ds, quiet);
  } finally {
    await ds.destroy();
  }
}

/**
 * Migrates one template per run, which every test file copies (`mediumDatabase()`, `startStack()`) instead of
 * migrating a database of its own: `CREATE DATABASE … TEMPLATE` on TEST_DATABASE_URL, else a PGlite data
 * directory copied with cpSync (a fresh PGlite directory costs unpacking the PGlite template and every migration). Both the medium and e2e projects name
 * this file; the second call finds the first's.
 */
export default async function setup(): Promise<void> {
  if (process.env[TEMPLATE_DB_ENV] || process.env[TEMPLATE_DIR_ENV]) return;
  const base = process.env.TEST_DATABASE_URL;
  if (base) {
    const name = `gw_template_${process.pid}_${randomBytes(4).toString('hex')}`;
    const c = new Client({ connectionString: base });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
    const u = new URL(base);
    u.pathname = `/${name}`;
    await migrate(u.toString());
    process.env[TEMPLATE_DB_ENV] = name;
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'gw-template-'));
    const pg = await startEmbeddedPostgres(dir);
    try {
      await migrate(pg.url);
    } finally {
      // A clean shutdown, so the copied directory starts without recovery.
      await pg.stop();
    }
    process.env[TEMPLATE_DIR_ENV] = dir;
  }
}
