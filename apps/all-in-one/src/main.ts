import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { parseConfig, ConfigError } from '@gw/config';
import { generatedAdminToken } from '@gw/auth';
import { installGracefulShutdown } from '@gw/common';
import { describeDatabase, startDatabaseProcess } from '@gw/db';
import { printStartBanner } from '@gw/observability';
import { createAdminApp } from '../../admin/src/main';
import { createGatewayApp } from '../../gateway/src/main';

/**
 * `npm start`: gateway and admin in one process, sharing one database: DATABASE_URL, else embedded PGlite in
 * ./data served by a child process (so WASM Postgres neither blocks requests nor grows this process).
 * Production runs apps/gateway and apps/admin as separate processes instead.
 */
async function main(): Promise<void> {
  const cfg = parseConfig();
  const db = await startDatabaseProcess(cfg);
  const overrides = db ? { databaseUrl: db.url } : undefined;
  const gateway = await createGatewayApp(overrides);
  const admin = await createAdminApp(overrides);
  // The apps drain and flush their ledger first; then the database writes its files out and stops.
  installGracefulShutdown([gateway, admin], async () => db?.stop(), { graceMs: cfg.shutdownGraceMs });
  await gateway.listen(cfg.gatewayPort, cfg.host);
  await admin.listen(cfg.adminPort, cfg.host);
  printStartBanner(cfg, { gateway: true, admin: true, database: describeDatabase(cfg, db), generatedAdminToken: generatedAdminToken([gateway, admin]) });
  if (cfg.gatewayWorkers > 1 && process.env.GATEWAY_WORKERS) {
    new Logger('Start').warn(
      `GATEWAY_WORKERS=${cfg.gatewayWorkers} is ignored here: npm start runs gateway and admin in one event loop; run apps/gateway (npm run start:gateway) for several workers`,
    );
  }
}

main().catch((e: unknown) => {
  process.stderr.write(e instanceof ConfigError ? `${e.message}\n` : `${(e as Error).stack ?? (e as Error).message}\n`);
  // The database child stops by itself when this process exits (its IPC channel closes).
  process.exit(1);
});
