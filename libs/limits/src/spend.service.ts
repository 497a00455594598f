import { Injectable } from '@nestjs/common';
import { UsageRepository } from '@gw/metering';
import { ApiKeyRepository, TenantService } from '@gw/tenancy';
import { utcDay, utcMonth } from './budget.periods';
import { BudgetPeriod, USD_UNITS, toUnits, toUsd } from './limit.types';
import { scopeLimits } from './limits.service';
import { ReservationReader } from './reservation.reader';

export interface BudgetStatus {
  /** null = no budget for this period. */
  budgetUsd: number | null;
  spentUsd: number;
  /**
   * Reserved against this budget by requests in flight (they settle at their actual cost when they end);
   * null without a budget, or when the counters cannot be seen from this process (in-memory counters of a
   * gateway in another process).
   */
  reservedUsd: number | null;
  remainingUsd: number | null;
  exhausted: boolean;
  periodStart: string;
  resetsAt: string;
}

export interface KeySpend {
  keyId: string;
  name: string;
  prefix: string;
  revoked: boolean;
  daily: BudgetStatus;
  monthly: BudgetStatus;
}

export interface TenantSpendReport {
  object: 'tenant.spend';
  tenantId: string;
  tenantName: string;
  asOf: string;
  tenant: Record<BudgetPeriod, BudgetStatus>;
  keys: KeySpend[];
}

/**
 * A tenant's settled spend (from the ledger) against each of its budgets, tenant-wide and per key, for
 * the current UTC day and month. Requests still in flight are not in it until they end and are flushed.
 */
@Injectable()
export class SpendService {
  constructor(
    private readonly tenants: TenantService,
    private readonly keys: ApiKeyRepository,
    private readonly ledger: UsageRepository,
    private readonly reservations: ReservationReader,
  ) {}

  async report(tenantId: string, now = Date.now()): Promise<TenantSpendReport> {
    const tenant = await this.tenants.get(tenantId);
    const keys = await this.keys.list(tenantId);
    const day = utcDay(now);
    const month = utcMonth(now);
    const rows = await this.ledger.spendByKey(tenantId, { dayStart: new Date(day.start), monthStart: new Date(month.start), monthEnd: new Date(month.end) });
    const byKey = new Map(rows.map((r) => [r.keyId, r]));
    // Summed in ledger units so that totals are exact, not float sums.
    const total = { day: 0, month: 0 };
    for (const r of rows) {
      total.day += toUnits(r.dayUsd);
      total.month += toUnits(r.monthUsd);
    }
    // Live counters: the tenant's with the first key's read (every read returns the tenant's too).
    const live = await Promise.all(keys.map((k) => this.reservations.read(tenantId, k.id, day.id, month.id)));
    const tenantLive = live[0] ?? (keys.length ? null : await this.reservations.read(tenantId, '-', day.id, month.id));
    const reserved = (units: number | undefined) => (units === undefined ? null : round(toUsd(units)));
    const status = (budgetUnits: number | null, spentUnits: number, p: { start: number; end: number }, reservedUnits?: number): BudgetStatus => ({
      budgetUsd: budgetUnits === null ? null : toUsd(budgetUnits),
      spentUsd: round(toUsd(spentUnits)),
      // reservations are only held against a budget
      reservedUsd: budgetUnits === null ? null : reserved(reservedUnits),
      remainingUsd: budgetUnits === null ? null : round(toUsd(Math.max(0, budgetUnits - spentUnits))),
      exhausted: budgetUnits !== null && spentUnits >= budgetUnits,
      periodStart: new Date(p.start).toISOString(),
      resetsAt: new Date(p.end).toISOString(),
    });
    const tl = scopeLimits(tenant.limits);
    return {
      object: 'tenant.spend',
      tenantId: tenant.id,
      tenantName: tenant.name,
      asOf: new Date(now).toISOString(),
      tenant: {
        daily: status(tl.dailyUnits, total.day, day, tenantLive?.tenant.daily.reservedUnits),
        monthly: status(tl.monthlyUnits, total.month, month, tenantLive?.tenant.monthly.reservedUnits),
      },
      keys: keys.map((k, i) => {
        const kl = scopeLimits(k.limits);
        const r = byKey.get(k.id);
        return {
          keyId: k.id,
          name: k.name,
          prefix: k.prefix,
          revoked: k.revokedAt !== null,
          daily: status(kl.dailyUnits, r ? toUnits(r.dayUsd) : 0, day, live[i]?.key.daily.reservedUnits),
          monthly: status(kl.monthlyUnits, r ? toUnits(r.monthUsd) : 0, month, live[i]?.key.monthly.reservedUnits),
        };
      }),
    };
  }
}

const round = (usd: number) => Math.round(usd * USD_UNITS) / USD_UNITS;
