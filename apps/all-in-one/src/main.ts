import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { parseConfig, ConfigError } from '@gw/config';
import { installGracefulShutdown } from '@gw/common';
import { startEmbeddedPostgres } from '@gw/db';
import { createAdminApp } from '../../admin/src/main';
import { createGatewayApp } from '../../gateway/src/main';

/**
 * `npm start`: gateway and admin in one process, sharing one database (embedded PGlite in ./data unless
 * DATABASE_URL is set). Production runs apps/gateway and apps/admin as separate processes instead.
 */
async function main(): Promise<void> {
  const cfg = parseConfig();
  const gateway = await createGatewayApp();
  const admin = await createAdminApp();
  installGracefulShutdown(
    [gateway, admin],
    async () => {
      if (!cfg.databaseUrl) await (await startEmbeddedPostgres(cfg.dataDir)).stop();
    },
    { graceMs: cfg.shutdownGraceMs },
  );
  await gateway.listen(cfg.gatewayPort, cfg.host);
  await admin.listen(cfg.adminPort, cfg.host);
  const log = new Logger('Start');
  const shown = cfg.host === '0.0.0.0' ? 'localhost' : cfg.host;
  log.log(`gateway: http://${shown}:${cfg.gatewayPort}/v1   admin: http://${shown}:${cfg.adminPort}/admin   docs: http://${shown}:${cfg.adminPort}/admin/docs`);
  if (cfg.gatewayWorkers > 1 && process.env.GATEWAY_WORKERS) {
    log.warn(
      `GATEWAY_WORKERS=${cfg.gatewayWorkers} is ignored here: npm start runs gateway and admin in one event loop; run apps/gateway (npm run start:gateway) for several workers`,
    );
  }
  log.log(`database: ${cfg.databaseUrl ? 'DATABASE_URL' : `embedded PGlite in ${cfg.dataDir}/pg`}   limits: ${cfg.redisUrl ? 'Redis' : 'in-process memory'}`);
}

main().catch((e: unknown) => {
  process.stderr.write(e instanceof ConfigError ? `${e.message}\n` : `${(e as Error).stack ?? (e as Error).message}\n`);
  process.exit(1);
});
