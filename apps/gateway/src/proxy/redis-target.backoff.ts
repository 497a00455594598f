import { Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { RedisScript } from '@gw/common';
import { BACKOFF_REASONS, BackoffReason, MemoryTargetBackoff } from './target.backoff';

const CHANNEL = 'gw:backoff';
const KEY_PREFIX = 'gw:backoff:';
/**
 * KEYS: the backoff key. ARGV: reason, px, channel, message. Stores the backoff unless a longer one is already
 * there (as the in-memory table does: two replicas' answers must not shorten each other's), and publishes it.
 */
const HOLD = new RedisScript(`
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 0`);
/** Keys are `<provider uuid>/<configured model or route pattern>`: bounded; anything longer is not ours. */
const MAX_KEY_CHARS = 600;
/** At most this many backoffs are read back on (re)connect. */
const MAX_LOADED = 10_000;

/**
 * Backoffs shared by every replica through Redis (REDIS_URL). Each replica keeps the known backoffs in its
 * own memory and checks only that on the hot path (no Redis round trip per request). A replica that sees a
 * 429 applies it locally at once, then, without waiting, stores it in Redis (`SET gw:backoff:<target> PX
 * <ms>` unless a longer one is there, so it expires by itself) and publishes it on `gw:backoff`; the other replicas apply it as the
 * message arrives (milliseconds). A replica that (re)connects reads the running backoffs back with SCAN,
 * covering messages it missed while away. The trade-off: during the publish latency, or while Redis is
 * unreachable, another replica may still send a request or two to a backed-off target; it then gets its own
 * 429 and backs off by itself. Waits travel as durations, not timestamps, so clock skew does not matter.
 */
export class RedisTargetBackoff extends MemoryTargetBackoff implements OnApplicationShutdown {
  override readonly kind = 'redis' as const;
  private readonly logger = new Logger('TargetBackoff');
  private readonly pub: Redis;
  private readonly sub: Redis;
  private closed = false;
  private warned = 0;
  /** Names this replica's messages: its own echo must not extend the hold it applied at once (by the latency). */
  private readonly origin = randomBytes(6).toString('hex');

  constructor(url: string, now: () => number = Date.now) {
    super(now);
    // Fail fast when Redis is away: publishing is best effort and never holds up a request.
    this.pub = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 2000, connectionName: 'gw-backoff' });
    this.sub = new Redis(url, { connectTimeout: 2000, connectionName: 'gw-backoff-sub' });
    for (const r of [this.pub, this.sub]) r.on('error', () => undefined); // surfaced per command
    this.sub.on('message', (_channel: string, message: string) => this.onMessage(message));
    // On every (re)connect: what was published while this replica was away.
    this.sub.on('ready', () => void this.load().catch((e: unknown) => this.warn('reading backoffs back', e)));
  }

  /** Subscribes and reads the running backoffs; gives up after `timeoutMs` (Redis down must not block start). */
  async start(timeoutMs = 3000): Promise<void> {
    const ready = (async () => {
      await this.sub.subscribe(CHANNEL);
      await this.load();
    })();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([ready.catch((e: unknown) => this.warn('subscribing', e)), timeout]);
    clearTimeout(timer);
  }

  override hold(key: string, ms: number, reason: BackoffReason): void {
    super.hold(key, ms, reason);
    if (this.closed || !(ms > 0) || key.length > MAX_KEY_CHARS) return;
    const px = Math.ceil(ms);
    HOLD.run(this.pub, [KEY_PREFIX + key], [reason, px, CHANNEL, JSON.stringify({ k: key, ms: px, r: reason, o: this.origin })]).catch((e: unknown) =>
      this.warn('publishing a backoff', e),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.pub, this.sub].map((r) => r.quit().catch(() => r.disconnect())));
  }

  private onMessage(message: string): void {
    let m: unknown;
    try {
      m = JSON.parse(message);
    } catch {
      return;
    }
    const { k, ms, r, o } = (m ?? {}) as { k?: unknown; ms?: unknown; r?: unknown; o?: unknown };
    if (o === this.origin) return;
    if (typeof k !== 'string' || k.length > MAX_KEY_CHARS || typeof ms !== 'number' || !Number.isFinite(ms) || !BACKOFF_REASONS.includes(r as BackoffReason))
      return;
    // Local only: re-publishing would echo forever.
    super.hold(k, ms, r as BackoffReason);
  }

  private async load(): Promise<void> {
    let cursor = '0';
    let seen = 0;
    do {
      const [next, keys] = await this.pub.scan(cursor, 'MATCH', `${KEY_PREFIX}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) {
        const pipe = this.pub.pipeline();
        for (const k of keys) pipe.get(k).pttl(k);
        const rows = (await pipe.exec()) ?? [];
        keys.forEach((k, i) => {
          const reason = rows[2 * i]?.[1];
          const ttl = Number(rows[2 * i + 1]?.[1]);
          if (BACKOFF_REASONS.includes(reason as BackoffReason) && ttl > 0) super.hold(k.slice(KEY_PREFIX.length), ttl, reason as BackoffReason);
        });
      }
      seen += keys.length;
    } while (cursor !== '0' && seen < MAX_LOADED);
  }

  /** At most one warning a minute: a Redis outage must not flood the logs from the hot path. */
  private warn(what: string, e: unknown): void {
    const now = Date.now();
    if (now - this.warned < 60_000) return;
    this.warned = now;
    this.logger.warn(`Redis ${what} failed (backoffs stay per replica meanwhile): ${(e as Error)?.message ?? String(e)}`);
  }
}
