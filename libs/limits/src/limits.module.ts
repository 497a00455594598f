import { Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { MeteringModule } from '@gw/metering';
import { GatewayMetrics } from '@gw/observability';
import { TenancyModule } from '@gw/tenancy';
import { Clock, LIMITS_CLOCK, LIMIT_STORE, LimitStore } from './limit.types';
import { LIMITS_OBSERVER, LimitsService } from './limits.service';
import { MemoryLimitStore } from './memory-limit.store';
import { RedisLimitStore } from './redis-limit.store';
import { ReservationReader } from './reservation.reader';
import { SpendService } from './spend.service';

/**
 * Data plane: enforcement. Counters live in Redis when REDIS_URL is set, else in process memory; budgets are
 * seeded from the ledger (`UsageRepository`). Refusals and budget use are reported to `GatewayMetrics`
 * (`GatewayObservabilityModule`, which the gateway app imports and which is global for this).
 */
@Module({
  imports: [MeteringModule],
  providers: [
    { provide: LIMITS_CLOCK, useValue: (() => Date.now()) satisfies Clock },
    {
      provide: LIMIT_STORE,
      inject: [APP_CONFIG, LIMITS_CLOCK],
      useFactory: (cfg: AppConfig, clock: Clock): LimitStore => (cfg.redisUrl ? new RedisLimitStore(cfg.redisUrl) : new MemoryLimitStore(clock)),
    },
    { provide: LIMITS_OBSERVER, useExisting: GatewayMetrics },
    LimitsService,
  ],
  exports: [LimitsService],
})
export class LimitsGatewayModule {}

/** Control plane: spend against budgets, read from the ledger; reservations in flight from the counters. */
@Module({
  imports: [TenancyModule, MeteringModule],
  providers: [SpendService, ReservationReader],
  exports: [SpendService],
})
export class LimitsAdminModule {}
