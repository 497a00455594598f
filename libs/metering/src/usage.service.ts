import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export type UsageGroup = 'day' | 'model' | 'key' | 'tenant' | 'provider';
export const USAGE_GROUPS: readonly UsageGroup[] = ['day', 'model', 'key', 'tenant', 'provider'];

/** Whose rows a report reads: one tenant's, or every tenant's (root callers only). Always explicit. */
export type UsageScope = { tenantId: string } | 'all';

export interface UsageQuery {
  keyId?: string;
  model?: string;
  from?: Date;
  to?: Date;
  groupBy?: UsageGroup[];
}

export interface UsageReportRow {
  day?: string;
  model?: string;
  keyId?: string | null;
  tenantId?: string;
  providerId?: string | null;
  requests: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  costUsd: number;
}

const GROUP_SQL: Record<UsageGroup, { expr: string; alias: string }> = {
  day: { expr: `to_char(date_trunc('day', started_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')`, alias: 'day' },
  model: { expr: `requested_model`, alias: 'model' },
  key: { expr: `key_id`, alias: 'keyId' },
  tenant: { expr: `tenant_id`, alias: 'tenantId' },
  provider: { expr: `provider_id`, alias: 'providerId' },
};

/** Reports straight from the ledger (indexed by tenant and time). Values are bound, never spliced. */
@Injectable()
export class UsageService {
  constructor(private readonly dataSource: DataSource) {}

  async report(scope: UsageScope, q: UsageQuery): Promise<UsageReportRow[]> {
    if (scope !== 'all' && !scope?.tenantId) throw new Error('UsageService.report: a tenant scope needs a tenantId');
    const where: string[] = [];
    const params: unknown[] = [];
    const bind = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (scope !== 'all') bind('tenant_id = ?', scope.tenantId);
    if (q.keyId) bind('key_id = ?', q.keyId);
    if (q.model) bind('requested_model = ?', q.model);
    if (q.from) bind('started_at >= ?', q.from);
    if (q.to) bind('started_at < ?', q.to);
    const groups = (q.groupBy ?? []).map((g) => GROUP_SQL[g]);
    const select = [
      ...groups.map((g) => `${g.expr} AS "${g.alias}"`),
      `count(*)::int AS "requests"`,
      `count(*) FILTER (WHERE status >= 400)::int AS "errors"`,
      `coalesce(sum(input_tokens),0)::bigint AS "inputTokens"`,
      `coalesce(sum(output_tokens),0)::bigint AS "outputTokens"`,
      `coalesce(sum(cached_tokens),0)::bigint AS "cachedTokens"`,
      `coalesce(sum(cost_usd),0) AS "costUsd"`,
    ];
    const sql =
      `SELECT ${select.join(', ')} FROM usage_records` +
      (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
      (groups.length ? ` GROUP BY ${groups.map((_, i) => i + 1).join(', ')} ORDER BY ${groups.map((_, i) => i + 1).join(', ')}` : '');
    const rows: Record<string, unknown>[] = await this.dataSource.query(sql, params);
    return rows.map((r) => ({
      ...r,
      requests: Number(r.requests),
      errors: Number(r.errors),
      inputTokens: Number(r.inputTokens),
      outputTokens: Number(r.outputTokens),
      cachedTokens: Number(r.cachedTokens),
      costUsd: Number(r.costUsd),
    })) as UsageReportRow[];
  }
}

/**
 * A CSV cell a spreadsheet would not run. Text that starts like a formula (`= + - @`, or a tab or CR that
 * some spreadsheets skip before one) gets a leading `'` (OWASP's advice: shown, never evaluated), and a cell
 * with a quote, comma, LF or CR is quoted (RFC 4180). Numbers are ours, never neutralised.
 */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  if (typeof v !== 'number' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function usageToCsv(rows: UsageReportRow[]): string {
  const cols = ['day', 'tenantId', 'keyId', 'model', 'providerId', 'requests', 'errors', 'inputTokens', 'outputTokens', 'cachedTokens', 'costUsd'].filter(
    (c) => rows.length === 0 || c in rows[0],
  ) as (keyof UsageReportRow)[];
  return [cols.join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
}
