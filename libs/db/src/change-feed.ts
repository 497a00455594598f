import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { EventEmitter } from 'node:events';
import { DataSource } from 'typeorm';
import { MigrationRunner } from './migration.runner';

/** Shared by every Nest app in this process (gateway + admin in `npm start`): instant invalidation. */
const localBus = new EventEmitter();
localBus.setMaxListeners(0);

/**
 * Tells in-memory caches that admin data changed. Admin mutations `bump()` a version row; each process
 * polls that one row every CACHE_REFRESH_MS (a single indexed read, never per request), and in-process
 * listeners are told at once. So a revoked key stops working within one poll interval everywhere.
 *
 * Telling is fire-and-forget: the version recorded here moves on as soon as listeners were called, whether
 * or not their reloads succeed. Each listener owns that: the caches reload through `CacheReloader`, which
 * retries a failed reload with backoff until it succeeds and also reloads whole every minute, so a transient
 * database error right after a change (a revocation) delays it by seconds, never loses it.
 */
@Injectable()
export class ChangeFeed implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('ChangeFeed');
  private readonly listeners = new Set<() => void>();
  private version = '';
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private stopped = false;
  private readonly onLocal = () => this.emit();

  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly migrations: MigrationRunner,
  ) {}

  async onModuleInit(): Promise<void> {
    // The baseline must be read before the caches load (onApplicationBootstrap): a change made between
    // their load and a later first poll would otherwise be taken as the baseline and never seen.
    // On a fresh database the `settings` table only exists once migrations are done.
    await this.migrations.ready();
    await this.poll();
    localBus.on('change', this.onLocal);
    this.timer = setInterval(() => {
      if (!this.polling && !this.stopped) this.polling = this.poll().finally(() => (this.polling = undefined));
    }, this.cfg.cacheRefreshMs);
    this.timer.unref();
  }

  /** Stop polling before the DataSource closes, and let a poll in flight finish. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.polling;
  }

  onApplicationShutdown(): void {
    localBus.off('change', this.onLocal);
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async bump(): Promise<void> {
    const rows: { value: string }[] = await this.dataSource.query(
      `UPDATE settings SET value = (value::bigint + 1)::text, updated_at = now() WHERE key = 'config_version' RETURNING value`,
    );
    this.version = rows[0]?.value ?? this.version;
    localBus.emit('change');
  }

  private async poll(): Promise<void> {
    try {
      const rows: { value: string }[] = await this.dataSource.query(`SELECT value FROM settings WHERE key = 'config_version'`);
      const v = rows[0]?.value ?? '';
      if (v !== this.version) {
        const first = this.version === '';
        this.version = v;
        if (!first) this.emit();
      }
    } catch (e) {
      this.logger.warn(`poll failed: ${(e as Error).message}`);
    }
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }
}
