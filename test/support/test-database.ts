import { randomBytes } from 'node:crypto';
import { cpSync, existsSync } from 'node:fs';
import { AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { Client } from 'pg';
import { TEMPLATE_DB_ENV, TEMPLATE_DIR_ENV } from './template.env';

export interface TestDatabase {
  url: string;
  /** True when it is a copy of the run's migrated template (asked for with `{ migrated: true }`). */
  migrated: boolean;
  drop(): Promise<void>;
}

/**
 * A fresh database of its own on the server in TEST_DATABASE_URL (dropped by `drop()`), so suites never
 * share state; undefined when TEST_DATABASE_URL is unset (callers then use embedded PGlite). Empty, unless
 * `migrated` asks for a copy of the run's migrated template (when the run has one: template.global-setup.ts).
 */
export async function createTestDatabase(prefix = 'gw_test', opts: { migrated?: boolean } = {}): Promise<TestDatabase | undefined> {
  const base = process.env.TEST_DATABASE_URL;
  if (!base) return undefined;
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const template = opts.migrated ? process.env[TEMPLATE_DB_ENV] : undefined;
  const c = new Client({ connectionString: base });
  await c.connect();
  try {
    await c.query(template ? `CREATE DATABASE ${name} TEMPLATE ${template}` : `CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    migrated: !!template,
    async drop() {
      const d = new Client({ connectionString: base });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}

/**
 * Fills `${dataDir}/pg` with a copy of the run's migrated PGlite template (template.global-setup.ts), for
 * `startEmbeddedPostgres(dataDir)`; false (and nothing copied) when the run has none or the directory is in use.
 */
export function copyPgliteTemplate(dataDir: string): boolean {
  const template = process.env[TEMPLATE_DIR_ENV];
  const target = join(dataDir, 'pg');
  if (!template || existsSync(target)) return false;
  cpSync(join(template, 'pg'), target, { recursive: true });
  return true;
}

/** A TCP port free on loopback right now (for processes that need a concrete port). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
