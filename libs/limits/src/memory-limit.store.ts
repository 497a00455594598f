import { SlidingLogThrottlerStorage } from './sliding-log.throttler-storage';
import {
  AdmitPlan,
  AdmitResult,
  BUDGETS,
  BudgetCounter,
  Clock,
  CounterSnapshot,
  LimitStore,
  PeriodSpend,
  Refusal,
  Scope,
  Ticket,
  WINDOW_MS,
  WindowReading,
  budgetMask,
  ticketOf,
} from './limit.types';
import { decideBudgets } from './budget.decision';

const SCOPES: readonly Scope[] = ['key', 'tenant'];
const THROTTLER_NAME = 'rpm';

interface TokenWindow {
  start: number;
  used: number;
}

/**
 * Counters in process memory (no REDIS_URL): each replica limits on its own.
 * Requests per minute go through a @nestjs/throttler `ThrottlerStorage` (a sliding log; refused attempts
 * are not counted). Tokens, concurrency and money are plain maps. The check-and-reserve step runs without
 * yielding to the event loop, so two concurrent requests can never both take the same remaining budget.
 */
export class MemoryLimitStore implements LimitStore {
  /** The stores alive in this process, so that an admin app beside the gateway (npm start) can show reservations. */
  static readonly live = new Set<MemoryLimitStore>();
  readonly kind = 'memory' as const;
  private readonly budgets = new Map<string, BudgetCounter>();
  private readonly seeded = new Set<string>();
  private readonly tokens = new Map<string, TokenWindow>();
  private readonly slots = new Map<string, number>();
  private currentDay = '';

  constructor(
    private readonly clock: Clock = Date.now,
    private readonly throttler = new SlidingLogThrottlerStorage(clock),
  ) {
    MemoryLimitStore.live.add(this);
  }

  async admit(plan: AdmitPlan): Promise<AdmitResult> {
    this.prune(plan.day, plan.month);
    const limits = budgetLimits(plan);
    if (limits.some((l) => l !== null) && !(this.seeded.has(marker(plan.tenantId, 'd', plan.day)) && this.seeded.has(marker(plan.tenantId, 'm', plan.month)))) {
      return { status: 'seed', rpm: {}, tpm: {} };
    }
    const counters = this.budgetIds(plan.tenantId, plan.keyId, plan.day, plan.month);
    // An exhausted budget is final: say so before counting the request against a rate window.
    let refusal: Refusal | undefined = this.budgetRefusal(plan, counters, limits).refusal;
    if (refusal) {
      return {
        status: 'refused',
        refusal,
        rpm: this.peekRequests(plan),
        tpm: this.readTokens(plan, this.clock()),
        budgets: this.readBudgets(counters, limits),
      };
    }

    const rpm: AdmitResult['rpm'] = {};
    for (const scope of SCOPES) {
      const limit = plan[scope].rpm;
      if (limit === null) continue;
      const r = await this.throttler.increment(rpmId(scope, plan), WINDOW_MS, limit, 0, THROTTLER_NAME);
      if (r.isBlocked) {
        const retryAfterMs = r.timeToBlockExpire * 1000;
        rpm[scope] = { used: limit, resetMs: retryAfterMs };
        const tpm = this.readTokens(plan, this.clock());
        return { status: 'refused', refusal: { kind: 'requests', scope, used: limit, retryAfterMs }, rpm, tpm, budgets: this.readBudgets(counters, limits) };
      }
      rpm[scope] = { used: r.totalHits, resetMs: r.timeToExpire * 1000 };
    }

    // From here to the return nothing awaits: checking and reserving is one atomic step.
    const now = this.clock();
    const windows = this.tokenWindows(plan, now);
    const budget = this.budgetRefusal(plan, counters, limits);
    refusal = budget.refusal ?? this.slotRefusal(plan) ?? tokenRefusal(plan, windows, now);
    if (refusal) return { status: 'refused', refusal, rpm, tpm: readings(windows, now), budgets: this.readBudgets(counters, limits) };

    const ticket = ticketOf(plan, {
      tokens: plan.tokens,
      costUnits: budget.grant,
      mask: budgetMask(plan),
      tpmStart: { key: 0, tenant: 0 },
      slot: { key: false, tenant: false },
    });
    for (const scope of SCOPES) {
      if (plan[scope].concurrency !== null) {
        const id = scopeId(scope, plan);
        this.slots.set(id, (this.slots.get(id) ?? 0) + 1);
        ticket.slot[scope] = true;
      }
      const w = windows[scope];
      if (w) {
        w.used += plan.tokens;
        this.tokens.set(scopeId(scope, plan), w);
        ticket.tpmStart[scope] = w.start;
      }
    }
    counters.forEach((id, i) => {
      if (ticket.mask[i] === '1') this.counter(id).reservedUnits += ticket.costUnits;
    });
    return { status: 'ok', ticket, rpm, tpm: readings(windows, now), budgets: this.readBudgets(counters, limits) };
  }

  async finish(t: Ticket, actualTokens: number, actualUnits: number): Promise<void> {
    this.budgetIds(t.tenantId, t.keyId, t.day, t.month).forEach((id, i) => {
      if (t.mask[i] !== '1' && actualUnits <= 0) return;
      const c = this.counter(id);
      if (t.mask[i] === '1') c.reservedUnits = Math.max(0, c.reservedUnits - t.costUnits);
      c.spentUnits += actualUnits;
    });
    for (const scope of SCOPES) {
      const id = scopeId(scope, t);
      if (t.slot[scope]) this.slots.set(id, Math.max(0, (this.slots.get(id) ?? 1) - 1));
      const w = this.tokens.get(id);
      // Only the window the estimate was reserved in is corrected; a later window never pays for an old one.
      if (t.tpmStart[scope] && w?.start === t.tpmStart[scope]) w.used = Math.max(0, w.used + actualTokens - t.tokens);
    }
  }

  async seed(tenantId: string, day: string, month: string, _dayTtlMs: number, _monthTtlMs: number, spend: PeriodSpend): Promise<void> {
    // Never lower a counter: settles that landed while the ledger was being read are already in it.
    const raise = (id: string, units: number) => {
      const c = this.counter(id);
      c.spentUnits = Math.max(c.spentUnits, units);
    };
    if (!this.seeded.has(marker(tenantId, 'd', day))) {
      raise(`${tenantId}|d:${day}`, spend.tenant.day);
      for (const [keyId, s] of spend.keys) raise(`${tenantId}|k:${keyId}|d:${day}`, s.day);
      this.seeded.add(marker(tenantId, 'd', day));
    }
    if (!this.seeded.has(marker(tenantId, 'm', month))) {
      raise(`${tenantId}|m:${month}`, spend.tenant.month);
      for (const [keyId, s] of spend.keys) raise(`${tenantId}|k:${keyId}|m:${month}`, s.month);
      this.seeded.add(marker(tenantId, 'm', month));
    }
  }

  async read(tenantId: string, keyId: string, day: string, month: string): Promise<CounterSnapshot> {
    const [kd, km, td, tm] = this.budgetIds(tenantId, keyId, day, month).map((id) => ({ ...(this.budgets.get(id) ?? { spentUnits: 0, reservedUnits: 0 }) }));
    return { key: { daily: kd, monthly: km }, tenant: { daily: td, monthly: tm } };
  }

  /** Nothing outlives this process here, so nothing needs a lease: holds end with their request or the process. */
  async renew(): Promise<void> {}

  async close(): Promise<void> {
    MemoryLimitStore.live.delete(this);
    this.throttler.close();
  }

  /** Ids in `BUDGETS` order. */
  private budgetIds(tenantId: string, keyId: string, day: string, month: string): string[] {
    return [`${tenantId}|k:${keyId}|d:${day}`, `${tenantId}|k:${keyId}|m:${month}`, `${tenantId}|d:${day}`, `${tenantId}|m:${month}`];
  }

  private counter(id: string): BudgetCounter {
    let c = this.budgets.get(id);
    if (!c) this.budgets.set(id, (c = { spentUnits: 0, reservedUnits: 0 }));
    return c;
  }

  /** The budget rule (budget.decision.ts): a refusal, or the cost to reserve (less than asked = clamped). */
  private budgetRefusal(plan: AdmitPlan, ids: string[], limits: (number | null)[]): { refusal?: Refusal; grant: number } {
    const counters = ids.map((id) => this.budgets.get(id) ?? { spentUnits: 0, reservedUnits: 0 });
    const d = decideBudgets(limits, counters, plan.costUnits, plan.minCostUnits);
    if (d.refused < 0) return { grant: d.grant };
    const c = counters[d.refused];
    return { refusal: { kind: 'budget', ...BUDGETS[d.refused], spentUnits: c.spentUnits, reservedUnits: c.reservedUnits }, grant: 0 };
  }

  private readBudgets(ids: string[], limits: (number | null)[]): (BudgetCounter | null)[] {
    return ids.map((id, i) => (limits[i] === null ? null : { ...(this.budgets.get(id) ?? { spentUnits: 0, reservedUnits: 0 }) }));
  }

  private slotRefusal(plan: AdmitPlan): Refusal | undefined {
    for (const scope of SCOPES) {
      const limit = plan[scope].concurrency;
      const used = this.slots.get(scopeId(scope, plan)) ?? 0;
      if (limit !== null && used >= limit) return { kind: 'concurrency', scope, used };
    }
    return undefined;
  }

  /** The current token window of each limited scope (a fresh one if the last has run out); not stored yet. */
  private tokenWindows(plan: AdmitPlan, now: number): Partial<Record<Scope, TokenWindow>> {
    const out: Partial<Record<Scope, TokenWindow>> = {};
    for (const scope of SCOPES) {
      if (plan[scope].tpm === null) continue;
      const w = this.tokens.get(scopeId(scope, plan));
      out[scope] = w && w.start + WINDOW_MS > now ? w : { start: now, used: 0 };
    }
    return out;
  }

  private readTokens(plan: AdmitPlan, now: number): AdmitResult['tpm'] {
    return readings(this.tokenWindows(plan, now), now);
  }

  /** For headers on a budget refusal only: the throttler's record, read without counting a hit. */
  private peekRequests(plan: AdmitPlan): AdmitResult['rpm'] {
    const out: AdmitResult['rpm'] = {};
    for (const scope of SCOPES) {
      if (plan[scope].rpm === null) continue;
      out[scope] = this.throttler.peek(rpmId(scope, plan), THROTTLER_NAME);
    }
    return out;
  }

  /** Drops counters of past periods once the day changes. */
  private prune(day: string, month: string): void {
    if (day === this.currentDay) return;
    this.currentDay = day;
    const keep = (id: string) => id.endsWith(`d:${day}`) || id.endsWith(`m:${month}`);
    for (const id of this.budgets.keys()) if (!keep(id)) this.budgets.delete(id);
    for (const id of this.seeded) if (!keep(id)) this.seeded.delete(id);
    const now = this.clock();
    for (const [id, w] of this.tokens) if (w.start + WINDOW_MS <= now) this.tokens.delete(id);
  }
}

function budgetLimits(plan: AdmitPlan): (number | null)[] {
  return BUDGETS.map((b) => (b.period === 'daily' ? plan[b.scope].dailyUnits : plan[b.scope].monthlyUnits));
}

function marker(tenantId: string, kind: 'd' | 'm', period: string): string {
  return `${tenantId}|seeded|${kind}:${period}`;
}

function scopeId(scope: Scope, x: { tenantId: string; keyId: string }): string {
  return scope === 'key' ? `k:${x.keyId}` : `t:${x.tenantId}`;
}

function rpmId(scope: Scope, x: { tenantId: string; keyId: string }): string {
  return `gw:${scopeId(scope, x)}`;
}

/** A request larger than the whole limit still passes when its window is empty, or it could never run. */
function tokenRefusal(plan: AdmitPlan, windows: Partial<Record<Scope, TokenWindow>>, now: number): Refusal | undefined {
  for (const scope of SCOPES) {
    const w = windows[scope];
    const limit = plan[scope].tpm;
    if (w && limit !== null && w.used > 0 && w.used + plan.tokens > limit) {
      return { kind: 'tokens', scope, used: w.used, retryAfterMs: w.start + WINDOW_MS - now };
    }
  }
  return undefined;
}

function readings(windows: Partial<Record<Scope, TokenWindow>>, now: number): Partial<Record<Scope, WindowReading>> {
  const out: Partial<Record<Scope, WindowReading>> = {};
  for (const scope of SCOPES) {
    const w = windows[scope];
    if (w) out[scope] = { used: w.used, resetMs: w.start + WINDOW_MS - now };
  }
  return out;
}
