import { OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { addressBucket, clientAddressOf } from '@gw/common';
import type { AppConfig } from '@gw/config';
import { AttemptTicket, AuthBlockTable, AuthFailureLimits, MemoryAuthBlockTable, Reservation } from './auth-block.table';
import { RedisAuthBlockTable } from './redis-auth-block.table';

export type { AuthFailureLimits } from './auth-block.table';

export const DEFAULT_AUTH_FAILURE_LIMITS: AuthFailureLimits = { maxFailures: 10, windowMs: 60_000, blockMs: 5 * 60_000 };
/**
 * The data plane's: more clients share an address there (an office behind NAT, a CI fleet), and a client
 * with a stale key retries on its own, so more failures are tolerated and the block is shorter.
 */
export const GATEWAY_AUTH_FAILURE_LIMITS: AuthFailureLimits = { maxFailures: 30, windowMs: 60_000, blockMs: 60_000 };

const BUCKET = Symbol('gw.authBucket');

/** The bucket a request's failures count in: its client address (TRUSTED_PROXIES applied), IPv6 per /64. */
export function authBucketOf(req: object): string {
  const r = req as Record<symbol, string | undefined>;
  // Asked by the pre-body gate and by the gateway's authenticate step: computed once.
  return (r[BUCKET] ??= addressBucket(clientAddressOf(req)));
}

/**
 * Slows down guessing admin tokens (and virtual keys, see `GatewayAuthFailureLimiter`): per client address
 * bucket, `maxFailures` failed authentications within `windowMs` block it for `blockMs` (429 with
 * Retry-After). Successes do not reset the count, so a valid low-privilege token cannot be used to keep
 * guessing. The counting itself is the block table's (memory, or Redis shared by replicas: REDIS_URL).
 */
export class AuthFailureLimiter implements OnModuleInit, OnApplicationShutdown {
  constructor(readonly table: AuthBlockTable) {}

  get limits(): AuthFailureLimits {
    return this.table.limits;
  }

  /** Seconds the bucket must still wait as far as this process knows; 0 when it is not blocked. */
  retryAfterSeconds(bucket: string): number {
    const ms = this.table.blockedMs(bucket);
    return ms > 0 ? Math.ceil(ms / 1000) : 0;
  }

  reserve(bucket: string): Reservation | Promise<Reservation> {
    return this.table.reserve(bucket);
  }

  fail(ticket: AttemptTicket): void | Promise<void> {
    return this.table.fail(ticket);
  }

  release(ticket: AttemptTicket): void {
    this.table.release(ticket);
  }

  /** A failure with no reservation (a credential that was proven good and no longer is). */
  async recordFailure(bucket: string): Promise<void> {
    const r = await this.table.reserve(bucket);
    if (r.ok) await this.table.fail(r.ticket);
  }

  async onModuleInit(): Promise<void> {
    await this.table.start?.();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.table.close();
  }
}

/** The gateway's own budget (a separate instance from the admin API's, even in one process). */
export class GatewayAuthFailureLimiter extends AuthFailureLimiter {}

/** The table for one app's budget: Redis when REDIS_URL is set, else process memory. */
export function authBlockTable(cfg: Pick<AppConfig, 'redisUrl' | 'authRedisNamespace'>, limits: AuthFailureLimits, scope: 'gateway' | 'admin'): AuthBlockTable {
  return cfg.redisUrl ? new RedisAuthBlockTable(cfg.redisUrl, limits, scope, cfg.authRedisNamespace ?? '') : new MemoryAuthBlockTable(limits);
}
