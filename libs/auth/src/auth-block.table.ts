export interface AuthFailureLimits {
  /** Failures from one address bucket within `windowMs` before it is blocked. */
  maxFailures: number;
  windowMs: number;
  /** How long a blocked bucket is refused, whatever credential it sends. */
  blockMs: number;
}

/** One reserved attempt with a credential not yet proven good. Opaque to callers. */
export interface AttemptTicket {
  readonly bucket: string;
}

export type Reservation = { ok: true; ticket: AttemptTicket } | { ok: false; retryAfterMs: number };

/**
 * Who may still try a credential, and who is blocked. Keyed by address bucket (`addressBucket`: an IPv4
 * address, an IPv6 /64).
 *
 * Exactness comes from reserving *before* a credential is judged: every attempt with an unproven
 * credential takes one of the bucket's `maxFailures` places (failures so far + attempts still being
 * judged), atomically, so however many guesses arrive at once, at most `maxFailures` are ever looked at
 * in a window. A success gives its place back (`release`); a failure keeps it (`fail`), and the one that
 * fills the allowance blocks the bucket for `blockMs`.
 */
export interface AuthBlockTable {
  readonly limits: AuthFailureLimits;
  /** Milliseconds the bucket is still blocked as far as this process knows (memory only, no I/O); 0 when not. */
  blockedMs(bucket: string): number;
  reserve(bucket: string): Reservation | Promise<Reservation>;
  fail(ticket: AttemptTicket): void | Promise<void>;
  release(ticket: AttemptTicket): void;
  /** Connects and subscribes, for tables that share state (Redis). */
  start?(): Promise<void>;
  close(): Promise<void>;
}

export interface MemoryTableBounds {
  /** Failure counters kept (least recently used evicted first): evicting one forgets at most maxFailures-1 failures. */
  maxCounters: number;
  /** Blocks kept; only expired ones are ever evicted. */
  maxBlocks: number;
}

export const DEFAULT_TABLE_BOUNDS: MemoryTableBounds = { maxCounters: 100_000, maxBlocks: 100_000 };

/** Attempts in flight already fill the allowance: not a block, so ask again soon. */
const BUSY_RETRY_MS = 1000;

interface Counter {
  windowStart: number;
  failures: number;
  pending: number;
}

interface MemoryTicket extends AttemptTicket {
  counter: Counter;
}

/**
 * The block table in process memory (the default, and the Redis table's fallback and local cache).
 *
 * Two tables, so a spray from many addresses cannot unblock anyone: counters live in a bounded LRU that
 * may evict (a sprayed address's single failure pushes out the least recently active counter), blocks in
 * their own bounded table that evicts expired blocks only. When the block table is full of live blocks
 * (maxBlocks buckets each failed maxFailures times within blockMs), a new block cannot be stored; rather
 * than forget one, the table refuses every unproven credential from every address (429) until a block
 * expires. Keys already known to be good never reserve, so they keep working.
 */
export class MemoryAuthBlockTable implements AuthBlockTable {
  private readonly counters = new Map<string, Counter>();
  /** bucket → blocked until. Insertion order is (nearly) expiry order: blockMs is constant. */
  private readonly blocks = new Map<string, number>();
  private saturatedUntil = 0;

  constructor(
    readonly limits: AuthFailureLimits,
    private readonly bounds: MemoryTableBounds = DEFAULT_TABLE_BOUNDS,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): { counters: number; blocks: number } {
    return { counters: this.counters.size, blocks: this.blocks.size };
  }

  blockedMs(bucket: string): number {
    const until = this.blocks.get(bucket);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left > 0) return left;
    this.blocks.delete(bucket);
    return 0;
  }

  reserve(bucket: string): Reservation {
    const t = this.now();
    const blocked = this.blockedMs(bucket);
    if (blocked > 0) return { ok: false, retryAfterMs: blocked };
    if (this.saturatedUntil > t) return { ok: false, retryAfterMs: this.saturatedUntil - t };
    let c = this.counters.get(bucket);
    if (c) {
      this.counters.delete(bucket); // re-inserted below: most recently used last
      if (t - c.windowStart >= this.limits.windowMs) {
        c.windowStart = t;
        c.failures = 0;
      }
    } else {
      if (this.counters.size >= this.bounds.maxCounters) this.counters.delete(this.counters.keys().next().value!);
      c = { windowStart: t, failures: 0, pending: 0 };
    }
    this.counters.set(bucket, c);
    if (c.failures + c.pending >= this.limits.maxFailures) return { ok: false, retryAfterMs: BUSY_RETRY_MS };
    c.pending++;
    return { ok: true, ticket: { bucket, counter: c } as MemoryTicket };
  }

  fail(ticket: AttemptTicket): void {
    const { bucket, counter: c } = ticket as MemoryTicket;
    if (c.pending > 0) c.pending--;
    c.failures++;
    if (c.failures >= this.limits.maxFailures && this.block(bucket, this.now() + this.limits.blockMs) && this.counters.get(bucket) === c) {
      this.counters.delete(bucket);
    }
  }

  release(ticket: AttemptTicket): void {
    const { counter: c } = ticket as MemoryTicket;
    if (c.pending > 0) c.pending--;
  }

  /**
   * Stores a block (also one learned from Redis). False when the table is full of live blocks: then every
   * unproven credential is refused for blockMs instead (see the class comment).
   */
  block(bucket: string, until: number): boolean {
    const t = this.now();
    if (!this.blocks.has(bucket) && this.blocks.size >= this.bounds.maxBlocks) {
      // Expired blocks sit at the front; stop at the first live one.
      for (const [b, u] of this.blocks) {
        if (u > t) break;
        this.blocks.delete(b);
      }
      if (this.blocks.size >= this.bounds.maxBlocks) {
        this.saturatedUntil = Math.max(this.saturatedUntil, until);
        return false;
      }
    }
    const longest = Math.max(until, this.blocks.get(bucket) ?? 0);
    this.blocks.delete(bucket);
    this.blocks.set(bucket, longest);
    return true;
  }

  async close(): Promise<void> {
    /* nothing held */
  }
}
