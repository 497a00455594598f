import { Logger } from '@nestjs/common';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { embeddedPostgresExists, startEmbeddedPostgres } from './embedded-postgres';
import { pgliteTemplate } from './pglite-template';

// Baseline-compiled WASM only: optimising Postgres' hot functions cost ~60 MB of code and, measured, no speed
// for the gateway's short queries. Set before PGlite compiles its module.
setFlagsFromString('--liftoff-only');

/**
 * The embedded database as a child process of the app (forkEmbeddedPostgres; the bench forks it too):
 * `node embedded-postgres.main.js <dataDir> [maxConnections]`. Sends `{ url }` over IPC once it listens.
 *
 * The parent owns its lifetime: it stops on the parent's `'stop'` message (after the apps have drained and
 * flushed their ledger) or when the IPC channel closes (the parent died: no orphan keeps the data dir open).
 * SIGINT/SIGTERM while the parent is there are left to the parent: Ctrl-C reaches the whole foreground
 * process group and systemd signals the whole control group, and stopping the database before the apps have
 * flushed would send their last usage rows to the journal instead of the database.
 */
async function main(): Promise<void> {
  const [dataDir, max] = process.argv.slice(2);
  if (!dataDir) throw new Error('usage: embedded-postgres.main.js <dataDir> [maxConnections]');
  // The parent says where the database listens; only trouble is printed from here.
  Logger.overrideLogger(['error', 'warn']);
  if (max === '--init') {
    await (await startEmbeddedPostgres(dataDir)).stop();
    return;
  }
  let initdb = false;
  // A directory with files but no PG_VERSION is left to initdb too (not replaced by the template): in the child.
  const pgDir = join(dataDir, 'pg');
  const stray = existsSync(pgDir) && readdirSync(pgDir).length > 0;
  if (!embeddedPostgresExists(dataDir) && (stray || !(await pgliteTemplate()).ok)) {
    // No template that fits the installed PGlite (the child says why): initdb grows the WASM memory to ~600 MB, and
    // WASM memory never shrinks, so it runs in a process of its own that exits, and this one opens the initialised
    // directory at ~130 MB. With the template, startEmbeddedPostgres below unpacks it (a few MB) instead.
    const init = spawnSync(process.execPath, [__filename, dataDir, '--init'], { stdio: 'inherit' });
    if (init.status !== 0) throw new Error(`initialising ${dataDir}/pg failed (${init.signal ?? `code ${init.status}`})`);
    initdb = true;
  }
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      try {
        // Closing PGlite writes its files out: the data dir opens cleanly next time.
        await (await startEmbeddedPostgres(dataDir)).stop();
        process.exit(0);
      } catch (e) {
        process.stderr.write(`embedded database: stop failed: ${(e as Error).message}\n`);
        process.exit(1);
      }
    })());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (!process.connected) void stop();
    });
  }
  process.on('message', (m) => {
    if (m === 'stop') void stop();
  });
  process.on('disconnect', () => void stop());
  const db = await startEmbeddedPostgres(dataDir, Number(max) || 100);
  if (!process.send || !process.connected) {
    // Run by hand (or the parent is already gone): serve until a signal.
    if (!process.send) process.stdout.write(`${db.url}\n`);
    else await stop();
    return;
  }
  process.send({ url: db.url, initialised: initdb ? 'initdb' : db.initialised });
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`embedded database: ${(e as Error).stack ?? (e as Error).message}\n`);
    process.exit(1);
  });
}
