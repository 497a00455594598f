import { Logger } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * PGlite (Postgres compiled to WASM) behind the Postgres wire protocol on a loopback port, so the
 * ordinary `pg` driver, TypeORM and the very same migrations work with no Postgres installed.
 * pglite-socket gives each client connection its own session, which keeps transactions and
 * `SELECT … FOR UPDATE` correct (an in-process driver shim that shares one session does not).
 * One instance per data directory per process: gateway and admin share it in `npm start`.
 */
export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

const instances = new Map<string, Promise<EmbeddedPostgres>>();

export function startEmbeddedPostgres(dataDir: string, maxConnections = 100): Promise<EmbeddedPostgres> {
  const dir = resolve(dataDir, 'pg');
  let p = instances.get(dir);
  if (!p) {
    p = boot(dir, maxConnections);
    instances.set(dir, p);
    p.catch(() => instances.delete(dir));
  }
  return p;
}

async function boot(dir: string, maxConnections: number): Promise<EmbeddedPostgres> {
  mkdirSync(dir, { recursive: true });
  // Required lazily: only processes without DATABASE_URL pay for loading the WASM build.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PGlite } = require('@electric-sql/pglite') as typeof import('@electric-sql/pglite');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PGLiteSocketServer } = require('@electric-sql/pglite-socket') as typeof import('@electric-sql/pglite-socket');
  const db = await PGlite.create(dir);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections });
  await server.start();
  const conn = server.getServerConn();
  const port = Number(conn.split(':').pop());
  new Logger('EmbeddedPostgres').log(`PGlite in ${dir} listening on 127.0.0.1:${port}`);
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      if (stopped) return;
      stopped = true;
      instances.delete(dir);
      await server.stop();
      await db.close();
    },
  };
}
