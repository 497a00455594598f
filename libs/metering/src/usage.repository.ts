import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { UsageRecordEntity } from '@gw/db';
import { Repository } from 'typeorm';

/** One ledger row as the gateway records it. */
export type UsageRow = Omit<UsageRecordEntity, never>;

export type UsageGroup = 'day' | 'model' | 'key' | 'tenant' | 'provider' | 'session';
export const USAGE_GROUPS: readonly UsageGroup[] = ['day', 'model', 'key', 'tenant', 'provider', 'session'];

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
  /** The client's session id; null for requests that named none. */
  sessionId?: string | null;
  requests: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  costUsd: number;
}

/** Settled spend of one key (null: rows without a key) within a month, and the part of it since the day began. */
export interface KeyPeriodSpend {
  keyId: string | null;
  dayUsd: number;
  monthUsd: number;
}

/** The periods `spendByKey` sums: [monthStart, monthEnd), and within it everything since dayStart. */
export interface SpendPeriods {
  dayStart: Date;
  monthStart: Date;
  monthEnd: Date;
}

/**
 * One statement per batch whatever its size: each column travels as one array parameter and `unnest`
 * turns them back into rows. Building a multi-row VALUES list through the query builder cost more CPU
 * than the rest of a request (profiled under `npm run bench`).
 */
const COLUMNS: [keyof UsageRow, string, string][] = [
  ['requestId', 'request_id', 'text'],
  ['clientRequestId', 'client_request_id', 'text'],
  ['tenantId', 'tenant_id', 'uuid'],
  ['keyId', 'key_id', 'uuid'],
  ['routeId', 'route_id', 'uuid'],
  ['providerId', 'provider_id', 'uuid'],
  ['endpoint', 'endpoint', 'text'],
  ['requestedModel', 'requested_model', 'text'],
  ['upstreamModel', 'upstream_model', 'text'],
  ['status', 'status', 'int'],
  ['errorCode', 'error_code', 'text'],
  ['inputTokens', 'input_tokens', 'int'],
  ['outputTokens', 'output_tokens', 'int'],
  ['cachedTokens', 'cached_tokens', 'int'],
  ['costUsd', 'cost_usd', 'numeric'],
  ['latencyMs', 'latency_ms', 'int'],
  ['ttfbMs', 'ttfb_ms', 'int'],
  ['streamed', 'streamed', 'boolean'],
  ['attempts', 'attempts', 'int'],
  ['startedAt', 'started_at', 'timestamptz'],
  ['finishedAt', 'finished_at', 'timestamptz'],
  ['sessionId', 'session_id', 'text'],
];
const INSERT_SQL =
  `INSERT INTO usage_records (${COLUMNS.map((c) => c[1]).join(', ')}) ` +
  `SELECT * FROM unnest(${COLUMNS.map((c, i) => `$${i + 1}::${c[2]}[]`).join(', ')}) ` +
  `ON CONFLICT (request_id) DO NOTHING`;
/** For replays: tells which rows were new (a row already in the ledger is skipped, and must not be charged twice). */
const INSERT_RETURNING_SQL = `${INSERT_SQL} RETURNING request_id`;

function columnsOf(rows: UsageRow[]): unknown[][] {
  return COLUMNS.map(([field]) => rows.map((r) => r[field] ?? null));
}

const GROUP_SQL: Record<UsageGroup, { expr: string; alias: string }> = {
  day: { expr: `to_char(date_trunc('day', started_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')`, alias: 'day' },
  model: { expr: `requested_model`, alias: 'model' },
  key: { expr: `key_id`, alias: 'keyId' },
  tenant: { expr: `tenant_id`, alias: 'tenantId' },
  provider: { expr: `provider_id`, alias: 'providerId' },
  session: { expr: `session_id`, alias: 'sessionId' },
};

const SPEND_BY_KEY_SQL = `SELECT key_id AS "keyId",
       coalesce(sum(cost_usd) FILTER (WHERE started_at >= $2), 0)::text AS "day",
       coalesce(sum(cost_usd), 0)::text AS "month"
  FROM usage_records
 WHERE tenant_id = $1 AND started_at >= $3 AND started_at < $4
 GROUP BY key_id`;

/**
 * The ledger (`usage_records`): the one owner of its SQL. Writes come in batches from `LedgerWriter` (ids are
 * the gateway's, so `ON CONFLICT DO NOTHING` only makes a retried batch idempotent); reads take their scope
 * first (a tenant, or `'all'` for root callers). Values are bound, never spliced. Errors are the database's
 * own (the writer tells a refused row, SQLSTATE class 22/23, from an unreachable database).
 */
@Injectable()
export class UsageRepository {
  constructor(@InjectRepository(UsageRecordEntity) private readonly repo: Pick<Repository<UsageRecordEntity>, 'query'>) {}

  /** Inserts a batch in one statement; rows already in the ledger are skipped. */
  async insertBatch(rows: UsageRow[]): Promise<void> {
    if (rows.length) await this.repo.query(INSERT_SQL, columnsOf(rows));
  }

  /** The same, resolving to the ids that were new (a replay must not charge a row twice). */
  async insertBatchReturningNew(rows: UsageRow[]): Promise<string[]> {
    if (!rows.length) return [];
    const out = await this.repo.query<{ request_id: string }[]>(INSERT_RETURNING_SQL, columnsOf(rows));
    return out.map((r) => r.request_id);
  }

  /** Totals, optionally grouped (by day in UTC, model, key, tenant, provider, client session) and ordered by the groups. */
  async report(scope: UsageScope, q: UsageQuery): Promise<UsageReportRow[]> {
    if (scope !== 'all' && !scope?.tenantId) throw new Error('UsageRepository.report: a tenant scope needs a tenantId');
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
    const rows: Record<string, unknown>[] = await this.repo.query(sql, params);
    return rows.map((r) => ({
      ...r,
      requests: Number(r.requests),
      errors: Number(r.errors),
      inputTokens: Number(r.inputTokens),
      outputTokens: Number(r.outputTokens),
      cachedTokens: Number(r.cachedTokens),
      costUsd: Number(r.costUsd),
    }));
  }

  /** One tenant's settled spend per key within [monthStart, monthEnd), and the part of it since dayStart (budgets). */
  async spendByKey(tenantId: string, p: SpendPeriods): Promise<KeyPeriodSpend[]> {
    const rows: { keyId: string | null; day: string; month: string }[] = await this.repo.query(SPEND_BY_KEY_SQL, [
      tenantId,
      p.dayStart,
      p.monthStart,
      p.monthEnd,
    ]);
    return rows.map((r) => ({ keyId: r.keyId, dayUsd: Number(r.day), monthUsd: Number(r.month) }));
  }
}
