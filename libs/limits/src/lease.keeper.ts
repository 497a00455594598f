import { Logger } from '@nestjs/common';
import type { Ticket } from './limit.types';

/** What renews leases: the limits store (Redis renews them; process memory has nothing to renew). */
export interface LeaseRenewer {
  /** Pushes the lease of every ticket `leaseMs` into the future; one round trip for all of them. */
  renew(tickets: Ticket[], leaseMs: number): Promise<void>;
}

/**
 * Keeps the Redis holds of this process's requests in flight (concurrency slots, budget reservations) alive.
 * They are short leases (LIMITS_LEASE_MS, 20 s by default) so that a killed process's holds end on their own
 * within that time; while the process lives, this renews all of them every third of a lease with one store
 * call, whatever the number of requests. A hold whose lease did run out (Redis unreachable for two beats) is
 * not brought back: it was given back already, and its settle then only adds the actual spend.
 */
export class LeaseKeeper {
  private readonly logger = new Logger('Leases');
  private readonly held = new Set<Ticket>();
  private timer?: NodeJS.Timeout;
  private renewing = false;
  private lastWarn = 0;
  /** Renewals made (one store call each), for tests. */
  renewals = 0;

  constructor(
    private readonly renewer: LeaseRenewer,
    readonly leaseMs: number,
  ) {}

  get size(): number {
    return this.held.size;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.renewNow(), Math.max(100, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  hold(ticket: Ticket): void {
    this.held.add(ticket);
  }

  drop(ticket: Ticket): void {
    this.held.delete(ticket);
  }

  async renewNow(): Promise<void> {
    if (this.renewing || !this.held.size) return;
    this.renewing = true;
    try {
      await this.renewer.renew([...this.held], this.leaseMs);
      this.renewals++;
    } catch (e) {
      if (Date.now() - this.lastWarn > 10_000) {
        this.lastWarn = Date.now();
        this.logger.warn(`renewing ${this.held.size} lease(s) failed: ${(e as Error).message}; they end ${this.leaseMs} ms after their last renewal`);
      }
    } finally {
      this.renewing = false;
    }
  }
}
