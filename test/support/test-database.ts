import { randomBytes } from 'node:crypto';
import { AddressInfo, createServer } from 'node:net';
import { Client } from 'pg';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh database of its own on the server in TEST_DATABASE_URL (dropped by `drop()`), so suites never
 * share state; undefined when TEST_DATABASE_URL is unset (callers then use embedded PGlite).
 */
export async function createTestDatabase(prefix = 'gw_test'): Promise<TestDatabase | undefined> {
  const base = process.env.TEST_DATABASE_URL;
  if (!base) return undefined;
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const c = new Client({ connectionString: base });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const d = new Client({ connectionString: base });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}

/** A TCP port free on loopback right now (for processes that need a concrete port). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
