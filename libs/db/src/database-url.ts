import { AppConfig } from '@gw/config';
import { startEmbeddedPostgres } from './embedded-postgres';

/** `DATABASE_URL` if given, else the embedded PGlite in `${DATA_DIR}/pg`. */
export async function resolveDatabaseUrl(cfg: AppConfig): Promise<string> {
  if (cfg.databaseUrl) return cfg.databaseUrl;
  return (await startEmbeddedPostgres(cfg.dataDir, Math.max(100, cfg.databasePoolSize * 4))).url;
}
