/** Milliseconds since the epoch; injectable so that tests can move time (period rollover). */
export type Clock = () => number;
export const LIMITS_CLOCK = Symbol('LIMITS_CLOCK');

/** Money is counted in integer units of 1e-8 USD: the ledger's own precision (numeric(18,8)), and exact in Redis. */
export const USD_UNITS = 100_000_000;
export const toUnits = (usd: number): number => (Number.isFinite(usd) && usd > 0 ? Math.round(usd * USD_UNITS) : 0);
export const toUsd = (units: number): number => units / USD_UNITS;

/** Rate and token windows are one minute long. */
export const WINDOW_MS = 60_000;

export type Scope = 'key' | 'tenant';
export type BudgetPeriod = 'daily' | 'monthly';

/** One scope's limits in store units; null = unlimited. */
export interface ScopeLimits {
  rpm: number | null;
  tpm: number | null;
  concurrency: number | null;
  dailyUnits: number | null;
  monthlyUnits: number | null;
}

/**
 * The four budgets of a request, always in this order (the Redis scripts and reservation masks rely on it):
 * key daily, key monthly, tenant daily, tenant monthly.
 */
export const BUDGETS: readonly { scope: Scope; period: BudgetPeriod }[] = [
  { scope: 'key', period: 'daily' },
  { scope: 'key', period: 'monthly' },
  { scope: 'tenant', period: 'daily' },
  { scope: 'tenant', period: 'monthly' },
];

/** Everything a store needs to decide one admission. */
export interface AdmitPlan {
  requestId: string;
  tenantId: string;
  keyId: string;
  /** Estimated tokens (prompt + max output) and cost (units) to reserve. */
  tokens: number;
  costUnits: number;
  /**
   * The cost of the request's useful minimum (output clamped to BUDGET_MIN_OUTPUT_TOKENS), <= costUnits.
   * When nothing is in flight and `costUnits` does not fit, the store reserves what remains if this fits.
   */
  minCostUnits: number;
  day: string;
  month: string;
  /** TTLs for budget counters of this day and month: the period's end plus a day of slack. */
  dayTtlMs: number;
  monthTtlMs: number;
  /** How long a reservation may live before it is presumed orphaned (its replica died). */
  leaseMs: number;
  key: ScopeLimits;
  tenant: ScopeLimits;
}

/** Budget i of `BUDGETS` is reserved when mask[i] === '1'. */
export function budgetMask(plan: Pick<AdmitPlan, 'key' | 'tenant'>): string {
  return BUDGETS.map((b) => ((b.period === 'daily' ? plan[b.scope].dailyUnits : plan[b.scope].monthlyUnits) !== null ? '1' : '0')).join('');
}

/** What a request holds until it ends; the store gives it back (settle or release) exactly once. */
export interface Ticket {
  requestId: string;
  tenantId: string;
  keyId: string;
  day: string;
  month: string;
  dayTtlMs: number;
  monthTtlMs: number;
  tokens: number;
  /** The cost reserved: the plan's, or less when the store clamped it to what the budget had left. */
  costUnits: number;
  /** Which budgets hold `costUnits` reserved (see `budgetMask`); '0000' = none. */
  mask: string;
  /** Start of the token window each scope reserved in (0 = none): a settle only corrects that window. */
  tpmStart: Record<Scope, number>;
  /** Whether a concurrency slot is held in each scope. */
  slot: Record<Scope, boolean>;
}

/** A ticket for `plan`'s request holding what a store granted (the rest of the ticket is the plan's identity). */
export function ticketOf(
  plan: Pick<Ticket, 'requestId' | 'tenantId' | 'keyId' | 'day' | 'month' | 'dayTtlMs' | 'monthTtlMs'>,
  held: Pick<Ticket, 'tokens' | 'costUnits' | 'mask' | 'tpmStart' | 'slot'>,
): Ticket {
  const { requestId, tenantId, keyId, day, month, dayTtlMs, monthTtlMs } = plan;
  return { requestId, tenantId, keyId, day, month, dayTtlMs, monthTtlMs, ...held };
}

/** A window's state after this request: used so far and time until it next frees capacity. */
export interface WindowReading {
  used: number;
  resetMs: number;
}

export type Refusal =
  | { kind: 'requests'; scope: Scope; used: number; retryAfterMs: number }
  | { kind: 'tokens'; scope: Scope; used: number; retryAfterMs: number }
  | { kind: 'concurrency'; scope: Scope; used: number }
  | { kind: 'budget'; scope: Scope; period: BudgetPeriod; spentUnits: number; reservedUnits: number };

export interface AdmitResult {
  /** `seed`: budgets are configured but this period's spend has not been loaded from the ledger yet. */
  status: 'ok' | 'refused' | 'seed';
  refusal?: Refusal;
  ticket?: Ticket;
  rpm: Partial<Record<Scope, WindowReading>>;
  tpm: Partial<Record<Scope, WindowReading>>;
  /** Counters of the configured budgets (`BUDGETS` order; null = no such budget), after this request's reservation. */
  budgets?: (BudgetCounter | null)[];
}

/** Spend already in the ledger for a period, in units: the tenant's total and each key's. */
export interface PeriodSpend {
  tenant: { day: number; month: number };
  keys: Map<string, { day: number; month: number }>;
}

/** The ledger's spend per key (`UsageRepository.spendByKey`, USD) in counter units, ready to seed a limit store. */
export function periodSpendOf(rows: readonly { keyId: string | null; dayUsd: number; monthUsd: number }[]): PeriodSpend {
  const spend: PeriodSpend = { tenant: { day: 0, month: 0 }, keys: new Map() };
  for (const r of rows) {
    const day = toUnits(r.dayUsd);
    const month = toUnits(r.monthUsd);
    spend.tenant.day += day;
    spend.tenant.month += month;
    if (r.keyId) spend.keys.set(r.keyId, { day, month });
  }
  return spend;
}

export interface BudgetCounter {
  spentUnits: number;
  reservedUnits: number;
}

/** The live counters of one key and its tenant (for the spend check and tests). */
export type CounterSnapshot = Record<Scope, Record<BudgetPeriod, BudgetCounter>>;

/** Where counters live: process memory, or Redis so that every replica shares them. */
export interface LimitStore {
  readonly kind: 'memory' | 'redis';
  /** Checks every limit and, if all pass, reserves the estimate: atomically, in one step. */
  admit(plan: AdmitPlan): Promise<AdmitResult>;
  /** Gives back the reservation and records what was actually used (0/0 = release). */
  finish(ticket: Ticket, actualTokens: number, actualUnits: number): Promise<void>;
  /** Loads a period's ledger spend into the counters (never lowering them) and marks the period seeded. */
  seed(tenantId: string, day: string, month: string, dayTtlMs: number, monthTtlMs: number, spend: PeriodSpend): Promise<void>;
  read(tenantId: string, keyId: string, day: string, month: string): Promise<CounterSnapshot>;
  /** Extends the leases of tickets still held (see LeaseKeeper); a lease that already ran out stays ended. */
  renew(tickets: Ticket[], leaseMs: number): Promise<void>;
  close(): Promise<void>;
}
export const LIMIT_STORE = Symbol('LIMIT_STORE');
