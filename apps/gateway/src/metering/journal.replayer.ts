import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { LimitsService } from '@gw/limits';
import { LedgerWriter, USAGE_JOURNAL, UsageJournal } from '@gw/metering';

/** How often a running gateway looks for journals of dead sibling processes (same volume) to replay. */
export const JOURNAL_SCAN_MS = 5_000;

export interface ReplayResult {
  /** Finished rows found in dead journals, and how many of them were not in Postgres yet. */
  rows: number;
  rowsWritten: number;
  /** Requests sent upstream that never finished, billed at their reservation (`gateway_restarted`). */
  orphans: number;
  orphansBilled: number;
}

/**
 * Replays the usage journals of dead gateway processes: at start, before the app serves (so budgets seeded
 * from the ledger afterwards include them), and every 5 s while running (a surviving sibling picks up a
 * killed one's). Finished rows go into Postgres as they are (rows already there are skipped); requests sent
 * upstream without a finish are billed at their reservation, and that spend is added to the budget counters
 * (with Redis, its reservation there ended with its lease). Rows are only ever added once: a replay cut short
 * is redone from the same journal, and the insert tells which rows are new.
 */
@Injectable()
export class JournalReplayer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('JournalReplay');
  private timer?: NodeJS.Timeout;
  private running?: Promise<ReplayResult | undefined>;

  constructor(
    @Inject(USAGE_JOURNAL) private readonly journal: UsageJournal,
    private readonly ledger: LedgerWriter,
    private readonly limits: LimitsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.replay();
    this.timer = setInterval(() => void this.replay(), JOURNAL_SCAN_MS);
    this.timer.unref();
  }

  beforeApplicationShutdown(): Promise<unknown> | undefined {
    if (this.timer) clearInterval(this.timer);
    return this.running;
  }

  /** One pass (shared by concurrent callers); never throws: what failed is retried on the next pass. */
  replay(): Promise<ReplayResult | undefined> {
    this.running ??= this.pass()
      .catch((e: unknown) => {
        this.logger.error(`replaying dead journals failed, will retry: ${(e as Error).message}`);
        return undefined;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<ReplayResult | undefined> {
    const found = this.journal.adoptDead();
    if (!found) return undefined;
    const inserted = await this.ledger.insertNow([...found.rows, ...found.orphans]);
    const billed = found.orphans.filter((o) => inserted.has(o.requestId));
    await Promise.all(
      billed.map((o) =>
        this.limits.charge(o.tenantId, o.keyId ?? '', o.startedAt, o.costUsd).catch((e: unknown) => {
          this.logger.warn(`request ${o.requestId}: its ledger row is written, but adding its spend to the budget counters failed: ${(e as Error).message}`);
        }),
      ),
    );
    found.release();
    const result: ReplayResult = {
      rows: found.rows.length,
      rowsWritten: found.rows.filter((r) => inserted.has(r.requestId)).length,
      orphans: found.orphans.length,
      orphansBilled: billed.length,
    };
    this.logger.warn(
      `replayed dead journal(s): ${result.rowsWritten} of ${result.rows} finished row(s) were missing from the ledger and are written; ` +
        `${result.orphansBilled} request(s) sent upstream but never finished are billed at their reservation (gateway_restarted)`,
    );
    return result;
  }
}
