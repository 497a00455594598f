export interface AuthFailureLimits {
  /** Failures from one address within `windowMs` before it is blocked. */
  maxFailures: number;
  windowMs: number;
  /** How long a blocked address is refused, whatever credential it sends. */
  blockMs: number;
}

export const DEFAULT_AUTH_FAILURE_LIMITS: AuthFailureLimits = { maxFailures: 10, windowMs: 60_000, blockMs: 5 * 60_000 };
/**
 * The data plane's: more clients share an address there (an office behind NAT, a CI fleet), and a client
 * with a stale key retries on its own, so more failures are tolerated and the block is shorter.
 */
export const GATEWAY_AUTH_FAILURE_LIMITS: AuthFailureLimits = { maxFailures: 30, windowMs: 60_000, blockMs: 60_000 };

interface Entry {
  windowStart: number;
  failures: number;
  blockedUntil: number;
}

const MAX_TRACKED = 10_000;

/**
 * Slows down guessing admin tokens (and virtual keys, see `GatewayAuthFailureLimiter`): per source address, `maxFailures` failed authentications within
 * `windowMs` block that address for `blockMs` (429 with Retry-After). In process memory: each admin
 * replica counts on its own, which still caps guesses at replicas × maxFailures per window.
 * Successes do not reset the count, so a valid low-privilege token cannot be used to keep guessing.
 */
export class AuthFailureLimiter {
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly limits: AuthFailureLimits = DEFAULT_AUTH_FAILURE_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds the address must still wait; 0 when it is not blocked. */
  retryAfterSeconds(ip: string): number {
    const e = this.entries.get(ip);
    const left = e ? e.blockedUntil - this.now() : 0;
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  recordFailure(ip: string): void {
    const t = this.now();
    let e = this.entries.get(ip);
    if (!e || t - e.windowStart >= this.limits.windowMs) {
      if (!e && this.entries.size >= MAX_TRACKED) this.sweep(t);
      e = { windowStart: t, failures: 0, blockedUntil: e?.blockedUntil ?? 0 };
      this.entries.set(ip, e);
    }
    e.failures++;
    if (e.failures >= this.limits.maxFailures) e.blockedUntil = t + this.limits.blockMs;
  }

  /** Bounded memory under a spray from many addresses: forget idle ones, or everyone if need be. */
  private sweep(t: number): void {
    for (const [ip, e] of this.entries) if (e.blockedUntil <= t && t - e.windowStart >= this.limits.windowMs) this.entries.delete(ip);
    if (this.entries.size >= MAX_TRACKED) this.entries.clear();
  }
}

/** The gateway's own counters (a separate instance from the admin API's, even in one process). */
export class GatewayAuthFailureLimiter extends AuthFailureLimiter {
  constructor(limits: AuthFailureLimits = GATEWAY_AUTH_FAILURE_LIMITS, now: () => number = Date.now) {
    super(limits, now);
  }
}
