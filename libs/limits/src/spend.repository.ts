import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { PeriodSpend, toUnits } from './limit.types';

export interface KeyPeriodSpend {
  keyId: string | null;
  dayUsd: number;
  monthUsd: number;
}

/** Reads settled spend from the ledger (usage_records), for one tenant at a time. */
@Injectable()
export class SpendRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Spend per key of one tenant within [monthStart, monthEnd), and the part of it since dayStart. */
  async byKey(tenantId: string, dayStart: Date, monthStart: Date, monthEnd: Date): Promise<KeyPeriodSpend[]> {
    const rows: Array<{ keyId: string | null; day: string; month: string }> = await this.dataSource.query(
      `SELECT key_id AS "keyId",
              coalesce(sum(cost_usd) FILTER (WHERE started_at >= $2), 0)::text AS "day",
              coalesce(sum(cost_usd), 0)::text AS "month"
         FROM usage_records
        WHERE tenant_id = $1 AND started_at >= $3 AND started_at < $4
        GROUP BY key_id`,
      [tenantId, dayStart, monthStart, monthEnd],
    );
    return rows.map((r) => ({ keyId: r.keyId, dayUsd: Number(r.day), monthUsd: Number(r.month) }));
  }

  /** The same, in counter units, ready to seed a limit store. */
  async periodSpend(tenantId: string, dayStart: Date, monthStart: Date, monthEnd: Date): Promise<PeriodSpend> {
    const rows = await this.byKey(tenantId, dayStart, monthStart, monthEnd);
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
}
