import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { CounterSnapshot } from './limit.types';
import { MemoryLimitStore } from './memory-limit.store';
import { RedisLimitStore } from './redis-limit.store';

/**
 * Money reserved by requests in flight, for the spend report. With REDIS_URL it is read from the shared
 * counters; without, only gateways in this same process can be seen (npm start): `null` when there is none.
 */
@Injectable()
export class ReservationReader implements OnApplicationShutdown {
  private redis?: RedisLimitStore;

  constructor(@Inject(APP_CONFIG) private readonly cfg: AppConfig) {}

  async read(tenantId: string, keyId: string, day: string, month: string): Promise<CounterSnapshot | null> {
    if (this.cfg.redisUrl) {
      this.redis ??= new RedisLimitStore(this.cfg.redisUrl);
      return this.redis.read(tenantId, keyId, day, month);
    }
    if (!MemoryLimitStore.live.size) return null;
    let sum: CounterSnapshot | null = null;
    for (const store of MemoryLimitStore.live) {
      const c = await store.read(tenantId, keyId, day, month);
      if (!sum) sum = c;
      else for (const s of ['key', 'tenant'] as const) for (const p of ['daily', 'monthly'] as const) sum[s][p].reservedUnits += c[s][p].reservedUnits;
    }
    return sum;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis?.close();
  }
}
