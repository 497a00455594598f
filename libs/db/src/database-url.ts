import { AppConfig } from '@gw/config';
import { startEmbeddedPostgres } from './embedded-postgres';
import { EmbeddedPostgresProcess, forkEmbeddedPostgres } from './embedded-postgres.process';
import { installedPgliteVersion } from './pglite-template';

/** Room for both apps' pools, the change feed's listener and a tool or two. */
const embeddedMaxConnections = (cfg: AppConfig) => Math.max(100, cfg.databasePoolSize * 4);

/**
 * `DATABASE_URL` if given, else the embedded PGlite in `${DATA_DIR}/pg` in this process. The app entry points
 * (`npm start`) start the embedded database in a child process first (startDatabaseProcess) and pass its URL
 * on, so this in-process fallback serves one-shot tools (rotate-master-key: nothing to serve while it runs,
 * and no process to leave behind) and tests that build apps in-process.
 */
export async function resolveDatabaseUrl(cfg: AppConfig): Promise<string> {
  if (cfg.databaseUrl) return cfg.databaseUrl;
  return (await startEmbeddedPostgres(cfg.dataDir, embeddedMaxConnections(cfg))).url;
}

/** For the app entry points: without DATABASE_URL, the embedded PGlite in its own child process. */
export async function startDatabaseProcess(cfg: AppConfig): Promise<EmbeddedPostgresProcess | undefined> {
  return cfg.databaseUrl ? undefined : forkEmbeddedPostgres(cfg.dataDir, embeddedMaxConnections(cfg));
}

/** What the start lines say about the database: never the password. */
export function describeDatabase(cfg: AppConfig, embedded?: EmbeddedPostgresProcess): string {
  if (embedded) {
    // A first start says how the directory was made (the database process itself prints only trouble).
    const made =
      embedded.initialised === 'template'
        ? `; initialised from the PGlite ${installedPgliteVersion()} template`
        : embedded.initialised === 'initdb'
          ? '; initialised by initdb (no PGlite template fits)'
          : '';
    return `embedded PGlite in ${embedded.dir} (process ${embedded.pid}, ${new URL(embedded.url).host}${made})`;
  }
  if (!cfg.databaseUrl) return `embedded PGlite in ${cfg.dataDir}/pg`;
  try {
    const u = new URL(cfg.databaseUrl);
    return `PostgreSQL ${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}${u.pathname}`;
  } catch {
    return 'PostgreSQL (DATABASE_URL)';
  }
}
