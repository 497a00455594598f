import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { RedisScript } from '@gw/common';
import { AttemptTicket, AuthBlockTable, AuthFailureLimits, MemoryAuthBlockTable, Reservation } from './auth-block.table';

/** KEYS: counter hash, block key. ARGV: maxFailures, windowMs. → {1} reserved | {0, ms} busy | {-1, ms} blocked */
const RESERVE_LUA = `
local b = redis.call('PTTL', KEYS[2])
if b > 0 then return {-1, b} end
local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
local p = tonumber(redis.call('HGET', KEYS[1], 'p') or '0')
if f + p >= tonumber(ARGV[1]) then return {0, 1000} end
redis.call('HINCRBY', KEYS[1], 'p', 1)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, 0}`;

/**
 * KEYS: counter hash, block key. ARGV: maxFailures, blockMs, windowMs, channel, message. → ms blocked (0: not
 * blocked). A new block is published, so every replica refuses the address at once, valid keys included.
 */
const FAIL_LUA = `
local b = redis.call('PTTL', KEYS[2])
if b > 0 then return b end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if tonumber(redis.call('HGET', KEYS[1], 'p') or '0') > 0 then redis.call('HINCRBY', KEYS[1], 'p', -1) end
else
  redis.call('HSET', KEYS[1], 'p', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local f = redis.call('HINCRBY', KEYS[1], 'f', 1)
if f >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[4], ARGV[5] .. ' ' .. ARGV[2])
  return tonumber(ARGV[2])
end
return 0`;

/** KEYS: counter hash. */
const RELEASE_LUA = `
if tonumber(redis.call('HGET', KEYS[1], 'p') or '0') > 0 then redis.call('HINCRBY', KEYS[1], 'p', -1) end
return 0`;

const RESERVE = new RedisScript(RESERVE_LUA);
const FAIL = new RedisScript(FAIL_LUA);
const RELEASE = new RedisScript(RELEASE_LUA);

interface RedisTicket extends AttemptTicket {
  redis: true;
}
const isRedisTicket = (t: AttemptTicket): t is RedisTicket => (t as RedisTicket).redis;

/**
 * The block table in Redis (REDIS_URL): counters and blocks shared by every replica, each step one atomic
 * script (reserve, fail, release), keys expiring on their own (counters after the window, blocks after
 * blockMs), so Redis memory stays bounded and nothing is evicted early (unless Redis itself is configured
 * with an `allkeys-*` eviction policy: do not).
 *
 * Blocks seen here are kept in a local `MemoryAuthBlockTable` too, so a blocked address is refused without a
 * round trip; a new block is published (one channel per namespace) and every replica subscribed adds it to
 * its local table, so a key already known good, which never asks Redis, is refused everywhere too. Redis down or slow (500 ms): the local table takes over for counting (each replica on its own,
 * as without Redis), blocks already known stay in force, and nothing answers 500.
 */
export class RedisAuthBlockTable implements AuthBlockTable {
  private readonly logger = new Logger('AuthBlocks');
  private readonly local: MemoryAuthBlockTable;
  private redisClient?: Redis;
  private subscriber?: Redis;
  private readonly channel: string;
  private lastWarn = 0;
  readonly stats = { reserve: 0, fail: 0, release: 0, fallbacks: 0 };

  constructor(
    private readonly url: string,
    readonly limits: AuthFailureLimits,
    /** `gateway` or `admin`: each app has its own budget. */
    private readonly scope: string,
    private readonly namespace = '',
    private readonly now: () => number = Date.now,
  ) {
    this.local = new MemoryAuthBlockTable(limits, undefined, now);
    this.channel = `gw:auth:blocks:${namespace}`;
  }

  /** The local table (known blocks, fallback counters): for tests and metrics. */
  get memory(): MemoryAuthBlockTable {
    return this.local;
  }

  /** Subscribes to new blocks (and connects). Until then (and while Redis is away) blocks are learned per request. */
  async start(): Promise<void> {
    void this.redis;
    // Subscribed again on every (re)connection; a replica that was cut off learns the blocks made meanwhile per request.
    const sub = new Redis(this.url, { connectTimeout: 1000, autoResubscribe: false, maxRetriesPerRequest: 1, connectionName: `gw-auth-${this.scope}-sub` });
    sub.on('error', () => undefined);
    sub.on('message', (_channel: string, msg: string) => {
      const [scope, bucket, ms] = msg.split(' ');
      if (scope === this.scope && Number(ms) > 0) this.local.block(bucket, this.now() + Number(ms));
    });
    this.subscriber = sub;
    const subscribed = new Promise<void>((resolve) => {
      sub.on('ready', () => {
        sub.subscribe(this.channel).then(
          () => resolve(),
          (e: unknown) => this.degraded(e),
        );
      });
    });
    // Never holds up start-up for long: with Redis away, the subscription follows once it connects.
    await Promise.race([subscribed, new Promise((r) => setTimeout(r, 1000).unref())]);
  }

  private get redis(): Redis {
    if (!this.redisClient) {
      // Fail fast: a guess waits at most 500 ms for Redis (none while it is disconnected) before this process counts it alone.
      this.redisClient = new Redis(this.url, {
        maxRetriesPerRequest: 1,
        connectTimeout: 1000,
        commandTimeout: 500,
        enableOfflineQueue: false,
        connectionName: `gw-auth-${this.scope}`,
      });
      this.redisClient.on('error', () => undefined); // surfaced per command
    }
    return this.redisClient;
  }

  blockedMs(bucket: string): number {
    return this.local.blockedMs(bucket);
  }

  async reserve(bucket: string): Promise<Reservation> {
    const known = this.local.blockedMs(bucket);
    if (known > 0) return { ok: false, retryAfterMs: known };
    try {
      this.stats.reserve++;
      const [status, ms] = (await RESERVE.run(this.redis, this.keys(bucket), [this.limits.maxFailures, this.limits.windowMs])) as [number, number];
      if (status === 1) return { ok: true, ticket: { bucket, redis: true } as RedisTicket };
      if (status === -1) this.local.block(bucket, this.now() + ms);
      return { ok: false, retryAfterMs: ms };
    } catch (e) {
      this.degraded(e);
      return this.local.reserve(bucket);
    }
  }

  async fail(ticket: AttemptTicket): Promise<void> {
    if (!isRedisTicket(ticket)) return this.local.fail(ticket);
    try {
      this.stats.fail++;
      const args = [this.limits.maxFailures, this.limits.blockMs, this.limits.windowMs, this.channel, `${this.scope} ${ticket.bucket}`];
      const ms = Number(await FAIL.run(this.redis, this.keys(ticket.bucket), args));
      if (ms > 0) this.local.block(ticket.bucket, this.now() + ms);
    } catch (e) {
      this.degraded(e);
      const r = this.local.reserve(ticket.bucket);
      if (r.ok) this.local.fail(r.ticket);
    }
  }

  release(ticket: AttemptTicket): void {
    if (!isRedisTicket(ticket)) return this.local.release(ticket);
    this.stats.release++;
    // Fire and forget: a lost release only over-counts until the window ends.
    RELEASE.run(this.redis, [this.keys(ticket.bucket)[0]], []).catch((e: unknown) => this.degraded(e));
  }

  async close(): Promise<void> {
    for (const r of [this.redisClient, this.subscriber]) {
      if (r?.status === 'ready') await r.quit().catch(() => r.disconnect());
      else r?.disconnect(); // quit would wait for a connection that may never come
    }
    this.redisClient = this.subscriber = undefined;
  }

  /** Counter and block share a hash tag: one cluster slot per bucket. */
  private keys(bucket: string): [string, string] {
    const base = `gw:auth:{${this.namespace}:${this.scope}:${bucket}}`;
    return [`${base}:c`, `${base}:b`];
  }

  private degraded(e: unknown): void {
    this.stats.fallbacks++;
    const t = this.now();
    if (t - this.lastWarn < 10_000) return;
    this.lastWarn = t;
    this.logger.warn(`Redis unavailable for failed-authentication counting (${(e as Error).message}); counting in this process until it is back`);
  }
}
