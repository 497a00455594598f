import { Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { TenancyModule } from '@gw/tenancy';
import { Clock, LIMITS_CLOCK, LIMIT_STORE, LimitStore } from './limit.types';
import { LimitsService } from './limits.service';
import { MemoryLimitStore } from './memory-limit.store';
import { RedisLimitStore } from './redis-limit.store';
import { ReservationReader } from './reservation.reader';
import { SpendRepository } from './spend.repository';
import { SpendService } from './spend.service';

/** Gateway side: enforcement. Counters live in Redis when REDIS_URL is set, else in process memory. */
@Module({
  providers: [
    SpendRepository,
    { provide: LIMITS_CLOCK, useValue: (() => Date.now()) satisfies Clock },
    {
      provide: LIMIT_STORE,
      inject: [APP_CONFIG, LIMITS_CLOCK],
      useFactory: (cfg: AppConfig, clock: Clock): LimitStore => (cfg.redisUrl ? new RedisLimitStore(cfg.redisUrl) : new MemoryLimitStore(clock)),
    },
    LimitsService,
  ],
  exports: [LimitsService],
})
export class LimitsModule {}

/** Admin side: spend against budgets, read from the ledger; reservations in flight from the counters. */
@Module({
  imports: [TenancyModule],
  providers: [SpendRepository, SpendService, ReservationReader],
  exports: [SpendService],
})
export class SpendModule {}
