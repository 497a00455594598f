/**
 * Why a route target is being left alone: its provider rate-limited the gateway (429 with a wait), or said
 * the gateway's account is out of credit (`insufficient_quota`, OpenRouter's 402).
 */
export type BackoffReason = 'rate_limit' | 'quota';
export const BACKOFF_REASONS: readonly BackoffReason[] = ['rate_limit', 'quota'];

export interface Backoff {
  reason: BackoffReason;
  remainingMs: number;
}

export interface BackoffSnapshot extends Backoff {
  /** `<provider id>/<upstream model>` (see `backoffKey`). */
  key: string;
}

/** The same target as a circuit: provider id + upstream model (or route pattern for a pass-through target). */
export function backoffKey(t: { providerId: string; model: string }): string {
  return `${t.providerId}/${t.model}`;
}

/** Forgotten first (expired ones) once this many targets are tracked. */
const MAX_ENTRIES = 10_000;

/**
 * Targets an upstream asked the gateway to leave alone for a while, so that a rate limit or an empty provider
 * account is not hammered (and does not count as a circuit-breaker failure). `check` is synchronous and
 * local: the hot path never waits on Redis. An abstract class rather than an interface so it can be a Nest
 * injection token; `MemoryTargetBackoff` is per process, `RedisTargetBackoff` shares it between replicas.
 */
export abstract class TargetBackoff {
  abstract readonly kind: 'memory' | 'redis';
  /** The backoff still running for this target, if any. */
  abstract check(key: string): Backoff | undefined;
  /** Leave the target alone for `ms` (a running longer backoff is kept). */
  abstract hold(key: string, ms: number, reason: BackoffReason): void;
  /** Backoffs still running (for `GET /admin/circuits`). */
  abstract snapshot(): BackoffSnapshot[];
}

interface Entry {
  until: number;
  reason: BackoffReason;
}

export class MemoryTargetBackoff extends TargetBackoff {
  readonly kind: 'memory' | 'redis' = 'memory';
  private readonly entries = new Map<string, Entry>();

  constructor(protected readonly now: () => number = Date.now) {
    super();
  }

  check(key: string): Backoff | undefined {
    if (this.entries.size === 0) return undefined;
    const e = this.entries.get(key);
    if (!e) return undefined;
    const remainingMs = e.until - this.now();
    if (remainingMs <= 0) {
      this.entries.delete(key);
      return undefined;
    }
    return { reason: e.reason, remainingMs };
  }

  hold(key: string, ms: number, reason: BackoffReason): void {
    if (!(ms > 0)) return;
    const now = this.now();
    const until = now + ms;
    const cur = this.entries.get(key);
    // Kept when it runs longer: two replicas' answers must not shorten each other's.
    if (cur && cur.until >= until) return;
    if (!cur && this.entries.size >= MAX_ENTRIES) this.sweep(now);
    this.entries.set(key, { until, reason });
  }

  snapshot(): BackoffSnapshot[] {
    const now = this.now();
    const out: BackoffSnapshot[] = [];
    for (const [key, e] of this.entries) if (e.until > now) out.push({ key, reason: e.reason, remainingMs: e.until - now });
    return out;
  }

  private sweep(now: number): void {
    for (const [k, e] of this.entries) if (e.until <= now) this.entries.delete(k);
    // Still full: drop the oldest (Map order is insertion order).
    while (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
  }
}
