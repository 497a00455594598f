import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { Errors, OpenAIError } from '@gw/common';
import { LimitSettings } from '@gw/db';
import { Principal } from '@gw/tenancy';
import { Period, periodTtlMs, utcDay, utcMonth } from './budget.periods';
import { refusalError } from './limit.errors';
import {
  AdmitPlan, Clock, CounterSnapshot, LIMITS_CLOCK, LIMIT_STORE, LimitStore, ScopeLimits, Ticket, WINDOW_MS, toUnits,
} from './limit.types';
import { rateLimitHeaders } from './rate-limit.headers';
import { SpendRepository } from './spend.repository';

/** What a request is expected to consume, reserved before it is forwarded. */
export interface UsageEstimate {
  model: string;
  tokens: number;
  costUsd: number;
}

export interface ActualUsage {
  tokens: number;
  costUsd: number;
}

/** A request's claim on its tenant's and key's limits; settle or release exactly once. */
export interface Admission {
  /** `x-ratelimit-*` headers to put on the response. */
  readonly headers: Record<string, string>;
  settle(actual: ActualUsage): void;
  release(): void;
}

const num = (v: number | null | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null);

export function scopeLimits(s: LimitSettings | null | undefined): ScopeLimits {
  const money = (v: number | null | undefined) => (num(v) === null ? null : toUnits(v as number));
  return {
    rpm: num(s?.requestsPerMinute),
    tpm: num(s?.tokensPerMinute),
    concurrency: num(s?.concurrentRequests),
    dailyUnits: money(s?.dailyBudgetUsd),
    monthlyUnits: money(s?.monthlyBudgetUsd),
  };
}

const unlimited = (l: ScopeLimits) => l.rpm === null && l.tpm === null && l.concurrency === null && l.dailyUnits === null && l.monthlyUnits === null;

/**
 * Rate limits, concurrency and budgets for a tenant and each of its keys.
 * `admit` checks everything and reserves the estimate in one store call (one Redis round trip); the
 * admission settles the actual usage when the request ends, or releases the reservation if nothing was
 * used. Budget counters start from the ledger's spend for the current UTC day and month, loaded once per
 * tenant and period, and are kept current by settles.
 */
@Injectable()
export class LimitsService implements OnApplicationShutdown {
  private readonly logger = new Logger('Limits');
  private readonly seeding = new Map<string, Promise<void>>();
  private readonly pending = new Set<Promise<void>>();

  constructor(
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    @Inject(LIMIT_STORE) readonly store: LimitStore,
    private readonly spend: SpendRepository,
    @Inject(LIMITS_CLOCK) private readonly clock: Clock,
  ) {}

  async admit(principal: Principal, estimate: UsageEstimate): Promise<Admission> {
    const now = this.clock();
    const day = utcDay(now);
    const month = utcMonth(now);
    const plan: AdmitPlan = {
      requestId: randomBytes(8).toString('hex'),
      tenantId: principal.tenantId,
      keyId: principal.keyId,
      tokens: Math.max(0, Math.ceil(estimate.tokens)),
      costUnits: toUnits(estimate.costUsd),
      day: day.id,
      month: month.id,
      dayTtlMs: periodTtlMs(day, now),
      monthTtlMs: periodTtlMs(month, now),
      // No request outlives the total upstream timeout; a reservation older than that lost its replica.
      leaseMs: this.cfg.upstreamTotalTimeoutMs + WINDOW_MS,
      key: scopeLimits(principal.keyLimits),
      tenant: scopeLimits(principal.tenantLimits),
    };
    if (unlimited(plan.key) && unlimited(plan.tenant)) {
      // Nothing to check, but spend is still counted, so a budget set later mid-period starts right.
      return this.admission({ ...spendOnly(plan) }, {});
    }
    let result = await this.guarded(() => this.store.admit(plan));
    if (result.status === 'seed') {
      await this.guarded(() => this.seed(plan.tenantId, day, month));
      result = await this.guarded(() => this.store.admit(plan));
      if (result.status === 'seed') throw Errors.unavailable('Budgets cannot be checked right now (the limits store lost its state); try again shortly.');
    }
    const headers = rateLimitHeaders(result, plan);
    if (result.status === 'refused') {
      throw refusalError(result.refusal!, {
        tenantName: principal.tenantName,
        keyName: principal.keyName,
        limits: { key: plan.key, tenant: plan.tenant },
        tokens: plan.tokens,
        costUnits: plan.costUnits,
        resetsAt: { daily: new Date(day.end), monthly: new Date(month.end) },
        headers,
      });
    }
    return this.admission(result.ticket!, headers);
  }

  /** The live budget counters of a key and its tenant for the current day and month. */
  counters(tenantId: string, keyId: string): Promise<CounterSnapshot> {
    const now = this.clock();
    return this.store.read(tenantId, keyId, utcDay(now).id, utcMonth(now).id);
  }

  /** Settles still on their way to Redis (fire-and-forget on the request path). */
  async idle(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.idle();
    await this.store.close();
  }

  private admission(ticket: Ticket, headers: Record<string, string>): Admission {
    let done = false;
    const end = (tokens: number, units: number) => {
      if (done) return;
      done = true;
      const p: Promise<void> = this.store
        .finish(ticket, tokens, units)
        .catch((e: Error) => this.logger.warn(`settling request ${ticket.requestId} failed: ${e.message}`))
        .finally(() => this.pending.delete(p));
      this.pending.add(p);
    };
    return {
      headers,
      settle: (a) => end(Math.max(0, Math.round(a.tokens)), toUnits(a.costUsd)),
      release: () => end(0, 0),
    };
  }

  /** Loads this period's ledger spend once per tenant; concurrent first requests share one query. */
  private seed(tenantId: string, day: Period, month: Period): Promise<void> {
    const id = `${tenantId}|${day.id}|${month.id}`;
    let p = this.seeding.get(id);
    if (!p) {
      p = (async () => {
        const spend = await this.spend.periodSpend(tenantId, new Date(day.start), new Date(month.start), new Date(month.end));
        const now = this.clock();
        await this.store.seed(tenantId, day.id, month.id, periodTtlMs(day, now), periodTtlMs(month, now), spend);
      })().finally(() => this.seeding.delete(id));
      this.seeding.set(id, p);
    }
    return p;
  }

  /** A store or ledger failure refuses with 503 (limits are never silently skipped). */
  private async guarded<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof OpenAIError) throw e;
      this.logger.error(`limits store (${this.store.kind}) failed: ${(e as Error).message}`);
      throw Errors.unavailable('Rate limits and budgets cannot be checked right now; try again shortly.');
    }
  }
}

function spendOnly(plan: AdmitPlan): Ticket {
  return {
    requestId: plan.requestId, tenantId: plan.tenantId, keyId: plan.keyId, day: plan.day, month: plan.month,
    dayTtlMs: plan.dayTtlMs, monthTtlMs: plan.monthTtlMs, tokens: 0, costUnits: 0, mask: '0000',
    tpmStart: { key: 0, tenant: 0 }, slot: { key: false, tenant: false },
  };
}

