import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { UsageRecordEntity } from '@gw/db';
import { DataSource } from 'typeorm';

export type UsageRow = Omit<UsageRecordEntity, never>;

export interface LedgerStats {
  queued: number;
  written: number;
  failedFlushes: number;
  lastFlushMs: number;
}

const MAX_QUEUE = 200_000;

/**
 * One statement per batch whatever its size: each column travels as one array parameter and `unnest`
 * turns them back into rows. Building a multi-row VALUES list through the query builder cost more CPU
 * than the rest of a request (profiled under `npm run bench`).
 */
const COLUMNS: Array<[keyof UsageRow, string, string]> = [
  ['requestId', 'request_id', 'text'],
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
];
const INSERT_SQL =
  `INSERT INTO usage_records (${COLUMNS.map((c) => c[1]).join(', ')}) ` +
  `SELECT * FROM unnest(${COLUMNS.map((c, i) => `$${i + 1}::${c[2]}[]`).join(', ')}) ` +
  `ON CONFLICT (request_id) DO NOTHING`;

function columnsOf(rows: UsageRow[]): unknown[][] {
  return COLUMNS.map(([field]) => rows.map((r) => r[field] ?? null));
}

/**
 * The request path only pushes into an array; a timer writes batches with one multi-row INSERT,
 * idempotent on request_id (ON CONFLICT DO NOTHING), so a retried flush never double-counts.
 * A failed flush keeps its rows for the next try. Shutdown flushes everything that is left.
 */
@Injectable()
export class LedgerWriter implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger('Ledger');
  private queue: UsageRow[] = [];
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  readonly stats: LedgerStats = { queued: 0, written: 0, failedFlushes: 0, lastFlushMs: 0 };
  /** Observers (metrics) of each flush: rows written, duration, error. */
  onFlush?: (rows: number, ms: number, error?: Error) => void;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush(), this.cfg.ledgerFlushMs);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.drain();
  }

  record(row: UsageRow): void {
    if (this.queue.length >= MAX_QUEUE) {
      this.logger.error(`ledger queue full (${MAX_QUEUE}); dropping the oldest row ${this.queue[0].requestId}`);
      this.queue.shift();
    }
    this.queue.push(row);
    this.stats.queued = this.queue.length;
    if (this.queue.length >= this.cfg.ledgerBatchSize) void this.flush();
  }

  get depth(): number {
    return this.queue.length;
  }

  /** Flushes until the queue is empty (used on shutdown and by tests). */
  async drain(): Promise<void> {
    for (let i = 0; i < 100 && (this.queue.length || this.flushing); i++) {
      await this.flush();
      if (this.queue.length && this.stats.failedFlushes) await new Promise((r) => setTimeout(r, 50));
    }
  }

  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (!this.queue.length) return Promise.resolve();
    this.flushing = this.writeBatch().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async writeBatch(): Promise<void> {
    const batch = this.queue.splice(0, this.cfg.ledgerBatchSize);
    const t0 = performance.now();
    try {
      await this.dataSource.query(INSERT_SQL, columnsOf(batch));
      const ms = performance.now() - t0;
      this.stats.written += batch.length;
      this.stats.lastFlushMs = ms;
      this.onFlush?.(batch.length, ms);
    } catch (e) {
      this.queue.unshift(...batch);
      this.stats.failedFlushes++;
      this.logger.error(`flush of ${batch.length} rows failed, will retry: ${(e as Error).message}`);
      this.onFlush?.(0, performance.now() - t0, e as Error);
    } finally {
      this.stats.queued = this.queue.length;
    }
  }
}
