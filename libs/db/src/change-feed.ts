import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { MigrationRunner } from './migration.runner';
import { SettingsRepository } from './settings.repository';

/** Every feed of this process (gateway + admin in `npm start`): instant invalidation. */
const localFeeds = new Set<ChangeFeed>();
/**
 * How long `bump()` waits for this process's caches to reload: an admin's 201 for a new key then means the
 * gateway in the same process already accepts it (the key cache has no per-request read to fall back on).
 * Bounded, so a cache that cannot reload (database trouble) delays the admin answer, never blocks it.
 */
const LOCAL_RELOAD_WAIT_MS = 2_000;

/**
 * Tells in-memory caches that admin data changed. Admin mutations `bump()` a version row; each process
 * polls that one row every CACHE_REFRESH_MS (a single indexed read, never per request), and in-process
 * listeners are told at once. So a revoked key stops working within one poll interval everywhere.
 *
 * Telling is fire-and-forget: the version recorded here moves on as soon as listeners were called, whether
 * or not their reloads succeed. Each listener owns that: the caches reload through `CacheReloader`, which
 * retries a failed reload with backoff until it succeeds and also reloads whole every minute, so a transient
 * database error right after a change (a revocation) delays it by seconds, never loses it. The one wait:
 * `bump()` lets this process's reloads finish (up to LOCAL_RELOAD_WAIT_MS) before the admin answers, so in
 * `npm start` a key is usable as soon as its creation returns; other processes see it after their next poll.
 */
@Injectable()
export class ChangeFeed implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('ChangeFeed');
  private readonly listeners = new Set<() => void | Promise<void>>();
  private version = '';
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly settings: SettingsRepository,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly migrations: MigrationRunner,
  ) {}

  async onModuleInit(): Promise<void> {
    // The baseline must be read before the caches load (onApplicationBootstrap): a change made between
    // their load and a later first poll would otherwise be taken as the baseline and never seen.
    // On a fresh database the `settings` table only exists once migrations are done.
    await this.migrations.ready();
    await this.poll();
    localFeeds.add(this);
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
    localFeeds.delete(this);
  }

  /** A listener may return the promise of its reload: `bump()` in this process waits for it (bounded). */
  subscribe(listener: () => void | Promise<void>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async bump(): Promise<void> {
    this.version = (await this.settings.bumpConfigVersion()) ?? this.version;
    const reloads = Promise.all([...localFeeds].map((f) => f.emit()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([reloads, new Promise((r) => (timer = setTimeout(r, LOCAL_RELOAD_WAIT_MS)))]);
    clearTimeout(timer);
  }

  private async poll(): Promise<void> {
    try {
      const v = (await this.settings.configVersion()) ?? '';
      if (v !== this.version) {
        const first = this.version === '';
        this.version = v;
        if (!first) void this.emit();
      }
    } catch (e) {
      this.logger.warn(`poll failed: ${(e as Error).message}`);
    }
  }

  /** Tells every listener; the promise settles when their reloads have (a listener's failure is its own). */
  private emit(): Promise<unknown> {
    const pending: Promise<void>[] = [];
    for (const l of this.listeners) {
      try {
        pending.push(Promise.resolve(l()));
      } catch (e) {
        this.logger.error(`listener failed: ${(e as Error).message}`);
      }
    }
    return Promise.allSettled(pending);
  }
}
