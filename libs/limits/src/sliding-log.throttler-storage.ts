import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Clock } from './limit.types';

interface Log {
  /** Expiry times of counted hits, ascending (hits arrive in time order). */
  hits: number[];
  /** Index of the oldest live hit: pruning advances it instead of copying the array. */
  head: number;
  windowEnds: number;
}

/**
 * A `ThrottlerStorage` (the @nestjs/throttler storage contract) with the same sliding-log rule as the
 * package's in-memory `ThrottlerStorageService`, but amortised O(1) per hit. The package's storage filters
 * the whole log and spreads it into `Math.min(...)` on every call: at a high RPM limit that was the largest
 * cost in a request (profiled under `npm run bench`), and past ~100k hits a window the spread throws.
 */
export class SlidingLogThrottlerStorage implements ThrottlerStorage {
  private readonly logs = new Map<string, Log>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly clock: Clock = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async increment(key: string, ttl: number, limit: number, _blockDuration: number, throttlerName: string) {
    const now = this.clock();
    const id = `${throttlerName}\u0000${key}`;
    let log = this.logs.get(id);
    if (!log) {
      log = { hits: [], head: 0, windowEnds: now + ttl };
      this.logs.set(id, log);
    }
    const hits = log.hits;
    while (log.head < hits.length && hits[log.head] <= now) log.head++;
    // Compact once the dead prefix dominates, so memory stays proportional to live hits.
    if (log.head > 1024 && log.head * 2 > hits.length) {
      log.hits = hits.slice(log.head);
      log.head = 0;
    }
    if (log.windowEnds <= now) log.windowEnds = now + ttl;
    const live = log.hits.length - log.head;
    const isBlocked = live >= limit;
    if (!isBlocked) log.hits.push(now + ttl);
    return {
      totalHits: live + 1,
      timeToExpire: Math.ceil((log.windowEnds - now) / 1000),
      isBlocked,
      timeToBlockExpire: isBlocked ? Math.max(0, Math.ceil((log.hits[log.head] - now) / 1000)) : 0,
    };
  }

  /** The live count and when the window resets, without counting a hit (headers on a budget refusal). */
  peek(key: string, throttlerName: string): { used: number; resetMs: number } {
    const now = this.clock();
    const log = this.logs.get(`${throttlerName}\u0000${key}`);
    if (!log || log.windowEnds <= now) return { used: 0, resetMs: 0 };
    let live = 0;
    for (let i = log.hits.length - 1; i >= log.head && log.hits[i] > now; i--) live++;
    return { used: live, resetMs: log.windowEnds - now };
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const now = this.clock();
    for (const [id, log] of this.logs) if (log.hits.length === 0 || log.hits[log.hits.length - 1] <= now) this.logs.delete(id);
  }
}
