import { Logger } from '@nestjs/common';
import { ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { EmbeddedPostgres } from './embedded-postgres';

export interface EmbeddedPostgresProcess extends EmbeddedPostgres {
  /** The database process (a child of this one). */
  pid: number;
  /** Where its files are. */
  dir: string;
}

/** How long a clean stop may take before the child is killed (PGlite writes its files out when it closes). */
const STOP_MS = 15_000;

/**
 * The embedded PGlite in a child process (embedded-postgres.main.ts), for the apps under `npm start`: WASM
 * Postgres (its ~100s of MB and its CPU) lives outside the app process and never blocks a request; the apps
 * reach it over loopback with the ordinary `pg` pool, exactly as with DATABASE_URL. pglite-socket queues every
 * connection's messages onto PGlite's one backend (single writer; see keepExtendedQueriesWhole).
 * If the child dies, this logs it: the apps keep answering from their caches, /readyz says 503 (the database
 * ping fails), and the ledger writer keeps its rows in the usage journal until a database is back.
 * Runs compiled only (dist/): tests that need a database in-process use startEmbeddedPostgres.
 */
export function forkEmbeddedPostgres(dataDir: string, maxConnections = 100, log = new Logger('EmbeddedPostgres')): Promise<EmbeddedPostgresProcess> {
  const entry = join(__dirname, 'embedded-postgres.main.js');
  if (!existsSync(entry)) return Promise.reject(new Error(`${entry} is missing: run the build (npm run build) first`));
  const dir = resolve(dataDir, 'pg');
  // Not the parent's execArgv: an --inspect port or a --cpu-prof belongs to the app, not to its database.
  const child = fork(entry, [dataDir, String(maxConnections)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  return new Promise((resolvePromise, reject) => {
    let stopping = false;
    let booted = false;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.once('message', (m: { url?: string; initialised?: EmbeddedPostgres['initialised'] }) => {
      if (!m?.url) return;
      booted = true;
      resolvePromise({
        url: m.url,
        pid: child.pid!,
        dir,
        initialised: m.initialised,
        async stop() {
          if (stopping) return exited;
          stopping = true;
          await stopChild(child, exited);
        },
      });
    });
    child.once('exit', (code, signal) => {
      if (!booted) {
        reject(new Error(`the embedded database exited while starting (${signal ?? `code ${code}`}); see its output above`));
        return;
      }
      if (stopping) return;
      log.error(
        `the embedded database (process ${child.pid}) exited unexpectedly (${signal ?? `code ${code}`}): requests are still served from ` +
          `memory, /readyz answers 503, and usage rows wait in the ledger journal. Restart to bring the database back.`,
      );
    });
    child.once('error', (e) => {
      if (!booted) reject(e);
    });
  });
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (child.connected) child.send('stop');
  else child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), STOP_MS)));
  try {
    if ((await Promise.race([exited, late])) === 'late') {
      new Logger('EmbeddedPostgres').warn(`the embedded database did not stop within ${STOP_MS} ms: killed`);
      child.kill('SIGKILL');
      await exited;
    }
  } finally {
    clearTimeout(timer);
  }
}
