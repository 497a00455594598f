import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit, Optional } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { UsageRepository, UsageRow } from './usage.repository';
import { SentRecord, USAGE_JOURNAL, UsageJournal } from './usage.journal';

export interface LedgerStats {
  queued: number;
  written: number;
  /** Flushes that failed as a whole (database unreachable, table missing…): their rows were kept for the next try. */
  failedFlushes: number;
  lastFlushMs: number;
  /** Rows that Postgres refused even on their own: dropped (each logged) so that they never block the queue. */
  poisonRows: number;
  /** Rows whose numbers were out of range (negative, fractional, beyond the columns) and were clamped. */
  sanitizedRows: number;
  /** Rows never written: dropped from a full queue, or still unwritten when the process stopped. */
  lostRows: number;
}

const MAX_QUEUE = 200_000;
/** Largest value of a Postgres `int` column. */
const INT_MAX = 2_147_483_647;
/** `cost_usd` is numeric(18,8): anything at or past 1e10 overflows; no single request costs a billion dollars. */
const MAX_COST_USD = 999_999_999;
/** Free-text columns hold client- or upstream-supplied names; Postgres `text` cannot hold NUL. */
const MAX_TEXT = 1000;

const INT_FIELDS = ['status', 'inputTokens', 'outputTokens', 'cachedTokens', 'attempts'] as const;
const NULLABLE_INT_FIELDS = ['latencyMs', 'ttfbMs'] as const;
const TEXT_FIELDS = ['clientRequestId', 'sessionId', 'endpoint', 'requestedModel', 'upstreamModel', 'errorCode'] as const;

function cleanInt(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) return 0;
  return Math.min(INT_MAX, Math.max(0, Math.round(v)));
}

function cleanText(v: string): string {
  const s = v.includes('\u0000') ? v.replaceAll('\u0000', '') : v;
  return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) : s;
}

/**
 * A copy of the row that Postgres will take: integers in [0, 2^31-1], cost finite in [0, 1e9) at the ledger's
 * 1e-8 precision, text without NUL and bounded, valid dates. Returns the names of fields that were out of
 * range (rounding a cost to 8 decimals is normal and not reported). The usage mapper clamps too; this is the
 * last line of defence, because a row the database refuses must never be able to stall the ledger.
 */
export function sanitizeUsageRow(row: UsageRow): { row: UsageRow; changed: string[] } {
  const out: UsageRow = { ...row };
  const changed: string[] = [];
  for (const f of INT_FIELDS) {
    const v = cleanInt(out[f]);
    if (v !== out[f]) changed.push(f);
    out[f] = v;
  }
  for (const f of NULLABLE_INT_FIELDS) {
    if (out[f] === null || out[f] === undefined) continue;
    const v = cleanInt(out[f]);
    if (v !== out[f]) changed.push(f);
    out[f] = v;
  }
  const cost = out.costUsd;
  if (typeof cost !== 'number' || !Number.isFinite(cost) || cost < 0 || cost > MAX_COST_USD) {
    changed.push('costUsd');
    out.costUsd = typeof cost === 'number' && Number.isFinite(cost) && cost > MAX_COST_USD ? MAX_COST_USD : 0;
  } else {
    out.costUsd = Math.round(cost * 1e8) / 1e8;
  }
  for (const f of TEXT_FIELDS) {
    const v = out[f];
    if (typeof v !== 'string') continue;
    const c = cleanText(v);
    if (c !== v) changed.push(f);
    out[f] = c;
  }
  for (const f of ['startedAt', 'finishedAt'] as const) {
    if (!(out[f] instanceof Date) || Number.isNaN(out[f].getTime())) {
      changed.push(f);
      out[f] = new Date();
    }
  }
  return { row: out, changed };
}

/**
 * Errors that belong to the rows, not to the database: data exceptions (class 22: out of range, bad text,
 * bad date…) and integrity violations (class 23). Anything else (connection lost, timeout, table missing) would
 * fail every row alike, so the batch is kept whole for the next try.
 */
function isRowError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23]/.test(code);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The request path only pushes into an array; a timer writes batches (`UsageRepository.insertBatch`: one statement). Ids are the
 * gateway's own (never client-chosen), so `ON CONFLICT (request_id) DO NOTHING` only makes a retried flush
 * idempotent; it cannot merge two requests.
 *
 * Failures: a flush the database could not take at all keeps its rows, in order, for the next try. A batch
 * the database refused because of its contents is split in halves down to single rows, so every good row is
 * written and a row that fails alone is dropped with an error log (`stats.poisonRows`): one bad row never
 * blocks the queue. Shutdown flushes everything that is left and logs what could not be written; a row
 * recorded after that (a straggler) is written at once, best effort.
 *
 * With a journal (the gateway's), every row is appended to it synchronously before it is queued, and the
 * journal is told as rows reach Postgres, so a killed process loses none: its journal is replayed with
 * `insertNow`. Rows leave the queue in order (a failed flush puts its rows back in front), so "the oldest n"
 * is all the journal needs to hear.
 */
@Injectable()
export class LedgerWriter implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger('Ledger');
  private queue: UsageRow[] = [];
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  /** Set once the shutdown flush is done: later rows are flushed on their own. */
  private closed = false;
  private late?: Promise<void>;
  readonly stats: LedgerStats = { queued: 0, written: 0, failedFlushes: 0, lastFlushMs: 0, poisonRows: 0, sanitizedRows: 0, lostRows: 0 };
  /** Observers (metrics) of each flush: rows written, duration, error. */
  onFlush?: (rows: number, ms: number, error?: Error) => void;

  constructor(
    private readonly usage: UsageRepository,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    @Optional() @Inject(USAGE_JOURNAL) private readonly journal?: UsageJournal,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush(), this.cfg.ledgerFlushMs);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const left = await this.drain();
    this.closed = true;
    if (left) this.giveUp(left, 'at shutdown');
    else this.logger.log(`shutdown: ledger flushed (${this.stats.written} rows written by this process)`);
  }

  record(input: UsageRow): void {
    const { row, changed } = sanitizeUsageRow(input);
    if (changed.length) {
      this.stats.sanitizedRows++;
      this.logger.warn(`request ${row.requestId}: out-of-range values clamped before metering (${changed.join(', ')})`);
    }
    // Before the response's last byte (the caller's job): from here on, a killed process does not lose it.
    this.journal?.finished(row);
    if (this.queue.length >= MAX_QUEUE) {
      // Not confirmed to the journal: the row stays there and is written by the next start's replay.
      this.logger.error(`ledger queue full (${MAX_QUEUE}); dropping the oldest row ${this.queue[0].requestId}`);
      this.queue.shift();
      this.stats.lostRows++;
    }
    this.queue.push(row);
    this.stats.queued = this.queue.length;
    if (this.closed) this.flushLate();
    else if (this.queue.length >= this.cfg.ledgerBatchSize) void this.flush();
  }

  /** A request is being sent upstream: journaled, so that it is billed (at its reservation) even if this process dies. */
  sent(rec: SentRecord): void {
    this.journal?.sent(rec);
  }

  /**
   * Writes rows now (replayed from a journal), resolving to the ids that were not in the ledger yet. A row
   * the database refuses even on its own is dropped with an error log, as in a flush; a database that cannot
   * be reached rejects, and the caller tries again later.
   */
  async insertNow(input: UsageRow[]): Promise<Set<string>> {
    const inserted = new Set<string>();
    const rows = input.map((r) => sanitizeUsageRow(r).row);
    for (let i = 0; i < rows.length; i += this.cfg.ledgerBatchSize) {
      const pending = [rows.slice(i, i + this.cfg.ledgerBatchSize)];
      while (pending.length) {
        const chunk = pending.shift()!;
        try {
          for (const id of await this.usage.insertBatchReturningNew(chunk)) inserted.add(id);
        } catch (e) {
          if (!isRowError(e)) throw e;
          if (chunk.length > 1) pending.unshift(chunk.slice(0, chunk.length >> 1), chunk.slice(chunk.length >> 1));
          else {
            this.stats.poisonRows++;
            this.logger.error(
              `replayed ledger row dropped, the database refused it (${(e as { code?: string }).code}: ${(e as Error).message}): ${JSON.stringify(chunk[0])}`,
            );
          }
        }
      }
    }
    this.stats.written += inserted.size;
    return inserted;
  }

  get depth(): number {
    return this.queue.length;
  }

  /**
   * Flushes until the queue is empty or `maxAttempts` flushes were made (used on shutdown and by tests);
   * resolves to the number of rows still queued.
   */
  async drain(maxAttempts = 100): Promise<number> {
    for (let i = 0; i < maxAttempts && (this.queue.length || this.flushing); i++) {
      const failedBefore = this.stats.failedFlushes;
      await this.flush();
      if (this.queue.length && this.stats.failedFlushes > failedBefore) await sleep(50);
    }
    return this.queue.length;
  }

  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (!this.queue.length) return Promise.resolve();
    this.flushing = this.writeBatch().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** A row after the shutdown flush: try to write it now (the database may still be open), never hold it. */
  private flushLate(): void {
    if (this.late) return;
    this.logger.warn(`request ${this.queue[this.queue.length - 1].requestId}: ledger row recorded after the shutdown flush; writing it now`);
    this.late = (async () => {
      try {
        const left = await this.drain(3);
        if (left) this.giveUp(left, 'after shutdown');
      } finally {
        this.late = undefined;
        // Rows that arrived while this attempt was finishing get their own.
        if (this.queue.length && !this.flushing) this.flushLate();
      }
    })();
  }

  private giveUp(rows: number, when: string): void {
    const ids = this.queue.slice(0, 5).map((r) => r.requestId);
    const fate = this.journal ? 'are kept in the usage journal for the next start to write' : 'are lost';
    this.logger.error(`${rows} ledger row(s) could not be written ${when} and ${fate} (requests ${ids.join(', ')}${rows > ids.length ? ', …' : ''})`);
    this.stats.lostRows += rows;
    this.queue = [];
    this.stats.queued = 0;
  }

  private async writeBatch(): Promise<void> {
    const batch = this.queue.splice(0, this.cfg.ledgerBatchSize);
    const t0 = performance.now();
    let written = 0;
    let error: Error | undefined;
    // Chunks still to write, in order: the batch, or halves of a batch the database refused for its contents.
    const pending: UsageRow[][] = [batch];
    try {
      while (pending.length) {
        const rows = pending.shift()!;
        try {
          await this.usage.insertBatch(rows);
          written += rows.length;
          this.journal?.confirm(rows.length);
        } catch (e) {
          error = e as Error;
          if (!isRowError(e)) {
            // The database, not the rows: keep everything not yet written, in order, for the next try.
            const back = [rows, ...pending].flat();
            pending.length = 0;
            this.queue.unshift(...back);
            this.stats.failedFlushes++;
            this.logger.error(`flush of ${back.length} rows failed, will retry: ${error.message}`);
          } else if (rows.length > 1) {
            const mid = rows.length >> 1;
            pending.unshift(rows.slice(0, mid), rows.slice(mid));
          } else {
            this.stats.poisonRows++;
            this.journal?.confirm(1);
            this.logger.error(`ledger row dropped, the database refused it (${(e as { code?: string }).code}: ${error.message}): ${JSON.stringify(rows[0])}`);
          }
        }
      }
    } finally {
      const ms = performance.now() - t0;
      this.stats.written += written;
      this.stats.lastFlushMs = ms;
      this.stats.queued = this.queue.length;
      this.onFlush?.(written, ms, error);
    }
  }
}
