import { Logger } from '@nestjs/common';
import type { ChangeFeed } from './change-feed';

export interface CacheReloaderOptions {
  /** First retry after a failed load; doubles up to `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
  /** Full reload this often whatever the change feed says: the safety net for a missed change. 0 = never. */
  periodMs?: number;
}

export const CACHE_RETRY_MS = 1_000;
export const CACHE_MAX_RETRY_MS = 30_000;
export const CACHE_FULL_RELOAD_MS = 60_000;

/**
 * The reload loop shared by the in-memory caches (keys, providers, routes, prices):
 *  - `reload()` coalesces: at most one load in flight plus one queued, and the promise it returns settles
 *    after the queued one too (so "a change, then reload()" always sees the change);
 *  - a failed load is logged and retried with backoff (1 s, 2 s, … 30 s) until one succeeds: the change feed
 *    has already moved past the version that asked for it and will not ask again;
 *  - every `periodMs` (60 s) a full reload runs anyway, so a change missed for any reason heals by itself.
 * `generation` counts the loads started, so a cache can tell whether a load began after something it read.
 */
export class CacheReloader {
  private readonly logger: Logger;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly periodMs: number;
  private running?: Promise<void>;
  private again = false;
  private failures = 0;
  private retryTimer?: NodeJS.Timeout;
  private periodTimer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private stopped = false;
  private gen = 0;

  constructor(
    name: string,
    private readonly load: () => Promise<void>,
    opts: CacheReloaderOptions = {},
  ) {
    this.logger = new Logger(name);
    this.retryMs = opts.retryMs ?? CACHE_RETRY_MS;
    this.maxRetryMs = opts.maxRetryMs ?? CACHE_MAX_RETRY_MS;
    this.periodMs = opts.periodMs ?? CACHE_FULL_RELOAD_MS;
  }

  /** Loads started so far (incremented before each load reads anything). */
  get generation(): number {
    return this.gen;
  }

  /** Consecutive failed loads (0 when the last one succeeded). */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Subscribes to the change feed, starts the periodic reload and does the first load. */
  async start(changes?: ChangeFeed): Promise<void> {
    this.stopped = false;
    this.unsubscribe = changes?.subscribe(() => this.reload());
    if (this.periodMs > 0) {
      this.periodTimer = setInterval(() => void this.reload(), this.periodMs);
      this.periodTimer.unref();
    }
    await this.reload();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.periodTimer) clearInterval(this.periodTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.periodTimer = this.retryTimer = undefined;
  }

  /** Never rejects: a failure is logged and a retry scheduled. */
  reload(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          this.gen++;
          await this.load();
        } while (this.again);
        if (this.failures) this.logger.log(`reload succeeded after ${this.failures} failed attempt(s)`);
        this.failures = 0;
      } catch (e) {
        this.failures++;
        const delay = Math.min(this.maxRetryMs, this.retryMs * 2 ** Math.min(this.failures - 1, 20));
        this.logger.error(`reload failed (attempt ${this.failures}), retrying in ${delay} ms: ${(e as Error).message}`);
        if (!this.stopped) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            void this.reload();
          }, delay);
          this.retryTimer.unref();
        }
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
