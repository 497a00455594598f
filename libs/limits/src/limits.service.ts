import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit, Optional } from '@nestjs/common';
import { randomBytes } from 'node:crypto';

const PROCESS_TAG = randomBytes(4).toString('hex');
let ticketSeq = 0;
import { APP_CONFIG, AppConfig } from '@gw/config';
import { Errors, OpenAIError } from '@gw/common';
import { LimitSettings } from '@gw/db';
import { UsageRepository } from '@gw/metering';
import { Principal } from '@gw/tenancy';
import { Period, periodTtlMs, utcDay, utcMonth } from './budget.periods';
import { LeaseKeeper } from './lease.keeper';
import { budgetRefusalIsFinal, refusalError } from './limit.errors';
import {
  AdmitPlan,
  AdmitResult,
  BUDGETS,
  Clock,
  CounterSnapshot,
  LIMITS_CLOCK,
  LIMIT_STORE,
  LimitStore,
  ScopeLimits,
  Ticket,
  periodSpendOf,
  toUnits,
  ticketOf,
  toUsd,
} from './limit.types';
import { codexBudgetHeaders, rateLimitHeaders } from './rate-limit.headers';

/** What a request is expected to consume, reserved before it is forwarded. */
export interface UsageEstimate {
  model: string;
  tokens: number;
  /** The worst case: prompt plus every choice's full output cap. */
  costUsd: number;
  /**
   * The cost of the useful minimum (the output cap clamped to BUDGET_MIN_OUTPUT_TOKENS); defaults to
   * `costUsd` (never clamped). See budget.decision.ts.
   */
  minCostUsd?: number;
}

export interface ActualUsage {
  tokens: number;
  costUsd: number;
}

/** A request's claim on its tenant's and key's limits; settle or release exactly once. */
export interface Admission {
  /** `x-ratelimit-*` headers to put on the response. */
  readonly headers: Record<string, string>;
  /** What is reserved (USD); below the estimate's `costUsd` when the store clamped it to what a budget had left. */
  readonly reservedUsd: number;
  /** The reservation is below the worst case: the caller must cap the forwarded output to fit `reservedUsd`. */
  readonly clamped: boolean;
  /** What was estimated (with `costUsd` the reservation, clamped or not): what the request is billed if its process dies before it finishes (see UsageJournal). */
  readonly estimate: UsageEstimate;
  settle(actual: ActualUsage): void;
  release(): void;
}

/** An estimate is never reserved above this many tokens (a body's bytes / 4 plus at most 10M of output). */
export const MAX_ESTIMATE_TOKENS = 10_000_000;
/** Nor above this many USD: enough to refuse on any real budget, and 1e15 units stay exact integers (< 2^53). */
export const MAX_ESTIMATE_USD = 10_000_000;
/** Settled tokens are capped too (two int32 counts), so no counter arithmetic ever leaves safe integers. */
const MAX_SETTLE_TOKENS = 2 * 2_147_483_647;

/** `v` as a finite number in [0, max]: NaN and -Infinity become 0, +Infinity becomes max. */
export function clampUsage(v: unknown, max: number): number {
  if (typeof v !== 'number' || Number.isNaN(v) || v <= 0) return 0;
  return Math.min(v, max);
}

const num = (v: number | null | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null);

export function scopeLimits(s: LimitSettings | null | undefined): ScopeLimits {
  const money = (v: number | null | undefined) => (num(v) === null ? null : toUnits(v!));
  return {
    rpm: num(s?.requestsPerMinute),
    tpm: num(s?.tokensPerMinute),
    concurrency: num(s?.concurrentRequests),
    dailyUnits: money(s?.dailyBudgetUsd),
    monthlyUnits: money(s?.monthlyBudgetUsd),
  };
}

/** What limits report to the gateway's metrics (GatewayMetrics implements it). */
export const LIMITS_OBSERVER = Symbol('LIMITS_OBSERVER');
export interface LimitsObserver {
  rateLimited(tenant: string, kind: string): void;
  budgetRefused(tenant: string, period: string): void;
  budgetUtilisation(tenant: string, period: string, ratio: number): void;
}

/** Redis holds of a killed process end within this when LIMITS_LEASE_MS is not configured. */
export const DEFAULT_LEASE_MS = 20_000;

const unlimited = (l: ScopeLimits) => l.rpm === null && l.tpm === null && l.concurrency === null && l.dailyUnits === null && l.monthlyUnits === null;

/**
 * Rate limits, concurrency and budgets for a tenant and each of its keys.
 * `admit` checks everything and reserves the estimate in one store call (one Redis round trip); the
 * admission settles the actual usage when the request ends, or releases the reservation if nothing was
 * used. Budget counters start from the ledger's spend for the current UTC day and month, loaded once per
 * tenant and period, and are kept current by settles.
 */
@Injectable()
export class LimitsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Limits');
  private readonly seeding = new Map<string, Promise<void>>();
  private readonly pending = new Set<Promise<void>>();
  /** Renews this process's Redis holds while it lives (see LeaseKeeper). */
  readonly leases: LeaseKeeper;

  constructor(
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    @Inject(LIMIT_STORE) readonly store: LimitStore,
    private readonly ledger: UsageRepository,
    @Inject(LIMITS_CLOCK) private readonly clock: Clock,
    /** The gateway's metrics (`LimitsGatewayModule` binds it to `GatewayMetrics`); none: nothing is reported. */
    @Optional() @Inject(LIMITS_OBSERVER) private readonly observer?: LimitsObserver,
  ) {
    this.leases = new LeaseKeeper(store, cfg.limitsLeaseMs ?? DEFAULT_LEASE_MS);
  }

  onModuleInit(): void {
    if (this.store.kind === 'redis') this.leases.start();
  }

  async admit(principal: Principal, estimate: UsageEstimate): Promise<Admission> {
    const now = this.clock();
    const day = utcDay(now);
    const month = utcMonth(now);
    const plan: AdmitPlan = {
      // Unique per process is enough (it names a reservation); a counter costs nothing, crypto did.
      requestId: `${PROCESS_TAG}${(++ticketSeq).toString(36)}`,
      tenantId: principal.tenantId,
      keyId: principal.keyId,
      // Estimates come from client input (body size, max_tokens): clamped, so no value can overflow a
      // counter, turn into NaN, or wrap in Redis' integer formatting.
      tokens: Math.ceil(clampUsage(estimate.tokens, MAX_ESTIMATE_TOKENS)),
      costUnits: toUnits(clampUsage(estimate.costUsd, MAX_ESTIMATE_USD)),
      minCostUnits: 0,
      day: day.id,
      month: month.id,
      dayTtlMs: periodTtlMs(day, now),
      monthTtlMs: periodTtlMs(month, now),
      // Short, and renewed by this process while the request runs: a killed replica's holds end on their own.
      leaseMs: this.leases.leaseMs,
      key: scopeLimits(principal.keyLimits),
      tenant: scopeLimits(principal.tenantLimits),
    };
    plan.minCostUnits = Math.min(
      plan.costUnits,
      estimate.minCostUsd === undefined ? plan.costUnits : toUnits(clampUsage(estimate.minCostUsd, MAX_ESTIMATE_USD)),
    );
    if (unlimited(plan.key) && unlimited(plan.tenant)) {
      // Nothing to check, but spend is still counted, so a budget set later mid-period starts right.
      return this.admission(spendOnly(plan), {}, plan, estimate);
    }
    let result = await this.guarded(() => this.store.admit(plan));
    if (result.status === 'seed') {
      await this.guarded(() => this.seed(plan.tenantId, day, month));
      result = await this.guarded(() => this.store.admit(plan));
      if (result.status === 'seed') throw Errors.unavailable('Budgets cannot be checked right now (the limits store lost its state); try again shortly.');
    }
    this.observe(principal, plan, result);
    const headers = { ...rateLimitHeaders(result, plan), ...codexBudgetHeaders(result.budgets, plan, day, month) };
    if (result.status === 'refused') {
      throw refusalError(result.refusal!, {
        tenantName: principal.tenantName,
        keyName: principal.keyName,
        limits: { key: plan.key, tenant: plan.tenant },
        tokens: plan.tokens,
        costUnits: plan.costUnits,
        minCostUnits: plan.minCostUnits,
        resetsAt: { daily: new Date(day.end), monthly: new Date(month.end) },
        headers,
      });
    }
    return this.admission(result.ticket!, headers, plan, estimate);
  }

  /**
   * Adds spend that never went through an admission of this process: a request of a dead process, billed
   * at its reservation when its journal is replayed. Counted in the period the request started in; its
   * reservation (if any) ended with its lease.
   */
  charge(tenantId: string, keyId: string, startedAt: Date, costUsd: number): Promise<void> {
    const units = toUnits(clampUsage(costUsd, MAX_ESTIMATE_USD));
    if (units <= 0) return Promise.resolve();
    const at = startedAt.getTime();
    const now = this.clock();
    const day = utcDay(at);
    const month = utcMonth(at);
    const ticket = spendOnly({
      requestId: `charge-${PROCESS_TAG}${(++ticketSeq).toString(36)}`,
      tenantId,
      keyId,
      day: day.id,
      month: month.id,
      dayTtlMs: periodTtlMs(day, now),
      monthTtlMs: periodTtlMs(month, now),
    });
    return this.store.finish(ticket, 0, units);
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
    this.leases.stop();
    await this.idle();
    await this.store.close();
  }

  private admission(ticket: Ticket, headers: Record<string, string>, plan: AdmitPlan, estimate: UsageEstimate): Admission {
    let done = false;
    const holds = ticket.mask !== '0000' || ticket.slot.key || ticket.slot.tenant;
    if (holds) this.leases.hold(ticket);
    const end = (tokens: number, units: number) => {
      if (done) return;
      done = true;
      if (holds) this.leases.drop(ticket);
      const p: Promise<void> = this.store
        .finish(ticket, tokens, units)
        .catch((e: unknown) => this.logger.warn(`settling request ${ticket.requestId} failed: ${(e as Error).message}`))
        .finally(() => this.pending.delete(p));
      this.pending.add(p);
    };
    // spendOnly reserves nothing (no budget to fit): never clamped.
    const clamped = ticket.mask !== '0000' && ticket.costUnits < plan.costUnits;
    return {
      headers,
      reservedUsd: toUsd(clamped ? ticket.costUnits : plan.costUnits),
      clamped,
      // A dead process's request is billed at what it reserved: the clamped amount when clamped.
      estimate: clamped ? { ...estimate, costUsd: toUsd(ticket.costUnits) } : estimate,
      settle: (a) => end(Math.round(clampUsage(a.tokens, MAX_SETTLE_TOKENS)), toUnits(clampUsage(a.costUsd, MAX_ESTIMATE_USD))),
      release: () => end(0, 0),
    };
  }

  /** Refusals by kind, and how much of each tenant budget is spent or reserved (alerts fire above 0.8). */
  private observe(principal: Principal, plan: AdmitPlan, result: AdmitResult): void {
    const o = this.observer;
    if (!o) return;
    const r = result.refusal;
    if (r?.kind === 'budget') {
      const limit = (r.period === 'daily' ? plan[r.scope].dailyUnits : plan[r.scope].monthlyUnits) ?? 0;
      // held by requests in flight: a retryable rate limit, not a spent budget
      if (budgetRefusalIsFinal(r, limit, plan.minCostUnits)) o.budgetRefused(principal.tenantName, r.period);
      else o.rateLimited(principal.tenantName, 'budget');
    } else if (r) o.rateLimited(principal.tenantName, r.kind);
    BUDGETS.forEach((b, i) => {
      const c = result.budgets?.[i];
      const limit = b.period === 'daily' ? plan.tenant.dailyUnits : plan.tenant.monthlyUnits;
      if (b.scope !== 'tenant' || !c || limit === null) return;
      o.budgetUtilisation(principal.tenantName, b.period, limit > 0 ? (c.spentUnits + c.reservedUnits) / limit : 1);
    });
  }

  /** Loads this period's ledger spend once per tenant; concurrent first requests share one query. */
  private seed(tenantId: string, day: Period, month: Period): Promise<void> {
    const id = `${tenantId}|${day.id}|${month.id}`;
    let p = this.seeding.get(id);
    if (!p) {
      p = (async () => {
        const spend = periodSpendOf(
          await this.ledger.spendByKey(tenantId, { dayStart: new Date(day.start), monthStart: new Date(month.start), monthEnd: new Date(month.end) }),
        );
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

function spendOnly(plan: Pick<AdmitPlan, 'requestId' | 'tenantId' | 'keyId' | 'day' | 'month' | 'dayTtlMs' | 'monthTtlMs'>): Ticket {
  return ticketOf(plan, { tokens: 0, costUnits: 0, mask: '0000', tpmStart: { key: 0, tenant: 0 }, slot: { key: false, tenant: false } });
}
