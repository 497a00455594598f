import { rmSync } from 'node:fs';
import { Client } from 'pg';
import { TEMPLATE_DB_ENV, TEMPLATE_DIR_ENV } from './template.env';

/** Drops the run's template (see template.global-setup.ts); a second project's teardown finds nothing left. */
export default async function teardown(): Promise<void> {
  const name = process.env[TEMPLATE_DB_ENV];
  const dir = process.env[TEMPLATE_DIR_ENV];
  delete process.env[TEMPLATE_DB_ENV];
  delete process.env[TEMPLATE_DIR_ENV];
  if (name && process.env.TEST_DATABASE_URL) {
    const c = new Client({ connectionString: process.env.TEST_DATABASE_URL });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}
