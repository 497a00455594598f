import { Logger } from '@nestjs/common';
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PGLITE_TEMPLATE_REFRESH, pgliteTemplate, unpackPgliteTemplate } from './pglite-template';

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
  /** How this start made a new data directory (unpacked the PGlite template, or ran initdb); unset if it existed. */
  initialised?: 'template' | 'initdb';
}

const instances = new Map<string, Promise<EmbeddedPostgres>>();
const SHARED_BUFFERS = '16MB';

/** Whether `${dataDir}/pg` holds a database already (else the first open runs initdb). */
export function embeddedPostgresExists(dataDir: string): boolean {
  return existsSync(resolve(dataDir, 'pg', 'PG_VERSION'));
}

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
  mkdirSync(dirname(dir), { recursive: true });
  const unlock = lockDataDir(dir);
  try {
    const initialised = existsSync(resolve(dir, 'PG_VERSION')) ? undefined : await initialise(dir);
    mkdirSync(dir, { recursive: true });
    const db = await open(dir, maxConnections, unlock);
    return initialised ? { ...db, initialised } : db;
  } catch (e) {
    unlock();
    throw e;
  }
}

/**
 * A new data directory: the PGlite template unpacked (a few MB) if it fits the installed PGlite, else initdb,
 * which PGlite runs when it opens a directory without PG_VERSION (~700 MB of WASM memory: embedded-postgres.main.ts
 * runs it in a throwaway process). Called with the data directory's lock held.
 */
async function initialise(dir: string): Promise<'template' | 'initdb'> {
  const log = new Logger('EmbeddedPostgres');
  const template = await pgliteTemplate();
  if (!template.ok) {
    log.warn(`${template.reason}: initdb initialises ${dir} instead (a ~700 MB peak); \`${PGLITE_TEMPLATE_REFRESH}\` makes a template that fits`);
    return 'initdb';
  }
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    log.warn(`${dir} holds files but no PG_VERSION (an initdb that stopped halfway?): left to initdb, not replaced by the template`);
    return 'initdb';
  }
  try {
    await unpackPgliteTemplate(template.file, dir);
  } catch (e) {
    log.warn(`unpacking the PGlite template into ${dir} failed (${(e as Error).message}): initdb runs instead`);
    return 'initdb';
  }
  log.log(`initialised ${dir} from the PGlite ${template.meta.pglite} template`);
  return 'template';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One process per data directory: PGlite has no postmaster.pid of its own, and two of them on the same files
 * corrupt them (say `npm start gateway` and `npm start admin` in two terminals, both without DATABASE_URL).
 * `${dir}.pid` names the owner; one left by a process that died is taken over.
 */
function lockDataDir(dir: string): () => void {
  const file = `${dir}.pid`;
  const me = String(process.pid);
  for (;;) {
    try {
      writeFileSync(file, me, { flag: 'wx' });
      return () => {
        try {
          if (readFileSync(file, 'utf8') === me) unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = 0;
    try {
      owner = Number(readFileSync(file, 'utf8'));
    } catch {
      continue; // released meanwhile
    }
    if (owner && owner !== process.pid && alive(owner)) {
      throw new Error(`${dir} is in use by process ${owner} (another npm start?): stop it, or give this one a DATA_DIR or a DATABASE_URL of its own`);
    }
    try {
      unlinkSync(file);
    } catch {
      // another process took it over first: try again
    }
  }
}

async function open(dir: string, maxConnections: number, unlock: () => void): Promise<EmbeddedPostgres> {
  // Required lazily: only processes without DATABASE_URL pay for loading the WASM build.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PGlite } = require('@electric-sql/pglite') as typeof import('@electric-sql/pglite');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PGLiteSocketServer } = require('@electric-sql/pglite-socket') as typeof import('@electric-sql/pglite-socket');
  // 16 MB of shared buffers instead of Postgres' 128 MB: WASM memory never shrinks, and the gateway's working set
  // (keys, routes, prices, batched ledger inserts) is small; the files themselves sit in the OS page cache.
  const db = await PGlite.create(dir, { startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${SHARED_BUFFERS}`] });
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections });
  keepExtendedQueriesWhole(server as unknown as { queryQueue?: unknown }, db);
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
      unlock();
    },
  };
}

/** Extended-query messages (Parse, Bind, Describe, Execute, Close, Flush): a sequence that ends at Sync. */
const EXTENDED = new Set([0x50, 0x42, 0x44, 0x45, 0x43, 0x48]);

interface QueuedMessage {
  handlerId: number;
  message: Uint8Array;
  resolve(bytes: number): void;
  reject(e: unknown): void;
  onData(data: Uint8Array): void;
}
interface QueryQueue {
  queue: QueuedMessage[];
  processing: boolean;
  lastHandlerId: number | null;
  processQueue(): Promise<void>;
  clearQueueForHandler(id: number): void;
}

/**
 * pglite-socket (0.2.x) runs every connection's messages on the one PGlite backend, one message at a time, and
 * keeps a connection's turn only inside a transaction. node-pg sends each query as Parse, Bind, Describe,
 * Execute, Sync: interleaved with another connection's, one Bind runs against the other's unnamed statement
 * ("bind message supplies 11 parameters, but prepared statement requires 1"), and after any error (a NUL byte
 * in a value, 22021) the backend discards everything up to the next Sync, other connections' messages included
 * ("unnamed prepared statement does not exist", "portal does not exist"): 500s for innocent concurrent requests.
 * So a connection keeps its turn from its first extended-query message through its Sync as well.
 */
export function keepExtendedQueriesWhole(
  server: { queryQueue?: unknown },
  db: {
    isInTransaction(): boolean;
    runExclusive<T>(fn: () => Promise<T>): Promise<T>;
    execProtocolRawStream(m: Uint8Array, o: { onRawData: (d: Uint8Array) => void }): Promise<unknown>;
  },
): void {
  const q = server.queryQueue as QueryQueue | undefined;
  if (!q || !Array.isArray(q.queue) || typeof q.processQueue !== 'function' || typeof q.clearQueueForHandler !== 'function') {
    new Logger('EmbeddedPostgres').warn('pglite-socket changed shape: concurrent queries may interleave');
    return;
  }
  let midQuery = false;
  const clear = q.clearQueueForHandler.bind(q);
  q.clearQueueForHandler = (id: number) => {
    // A connection that went away in the middle of a query gives its turn back.
    if (q.lastHandlerId === id) midQuery = false;
    clear(id);
  };
  q.processQueue = async function processQueue(this: QueryQueue) {
    if (q.processing || q.queue.length === 0) return;
    q.processing = true;
    try {
      while (q.queue.length > 0) {
        let item: QueuedMessage | undefined;
        if ((midQuery || db.isInTransaction()) && q.lastHandlerId !== null) {
          const i = q.queue.findIndex((m) => m.handlerId === q.lastHandlerId);
          // The connection whose turn it is has not sent its next message yet: wait for it.
          if (i === -1) break;
          item = q.queue.splice(i, 1)[0];
        } else item = q.queue.shift()!;
        let bytes = 0;
        try {
          await db.runExclusive(() =>
            db.execProtocolRawStream(item.message, {
              onRawData: (d) => {
                bytes += d.length;
                item.onData(d);
              },
            }),
          );
        } catch (e) {
          // (pglite-socket stopped its loop here with `processing` still set: every later query hung.)
          midQuery = false;
          item.reject(e);
          continue;
        }
        q.lastHandlerId = item.handlerId;
        midQuery = EXTENDED.has(item.message[0]);
        item.resolve(bytes);
      }
    } finally {
      q.processing = false;
    }
  };
}
