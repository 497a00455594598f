import type { AppConfig } from '@gw/config';
import type { DataSource } from 'typeorm';
import { LedgerWriter, sanitizeUsageRow } from './ledger.writer';
import { UsageRepository, UsageRow } from './usage.repository';

const now = new Date('2026-01-10T10:00:00Z');
const row = (id: string, over: Partial<UsageRow> = {}): UsageRow => ({
  requestId: id,
  clientRequestId: null,
  tenantId: '00000000-0000-4000-8000-000000000001',
  keyId: null,
  routeId: null,
  providerId: null,
  endpoint: 'chat',
  requestedModel: 'm',
  upstreamModel: null,
  status: 200,
  errorCode: null,
  inputTokens: 1,
  outputTokens: 2,
  cachedTokens: 0,
  costUsd: 0.5,
  latencyMs: 10,
  ttfbMs: null,
  streamed: false,
  attempts: 1,
  startedAt: now,
  finishedAt: now,
  ...over,
});

/** A database that refuses rows whose id is in `poison` (as Postgres does for bad data: SQLSTATE class 22). */
function fakeDb(opts: { poison?: Set<string>; down?: () => boolean } = {}) {
  const written: string[] = [];
  const statements: string[][] = [];
  const db = {
    query: jest.fn(async (_sql: string, params: unknown[][]) => {
      const ids = params[0] as string[];
      statements.push(ids);
      if (opts.down?.()) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      const bad = ids.find((id) => opts.poison?.has(id));
      if (bad) throw Object.assign(new Error(`integer out of range (${bad})`), { code: '22003' });
      written.push(...ids);
      return [];
    }),
  };
  return { db: db as unknown as DataSource, written, statements };
}

function writer(db: DataSource, batch = 100): LedgerWriter {
  const w = new LedgerWriter(new UsageRepository(db), { ledgerFlushMs: 1000, ledgerBatchSize: batch } as AppConfig);
  for (const level of ['error', 'warn', 'log'] as const) jest.spyOn((w as any).logger, level).mockImplementation(() => undefined);
  return w;
}

describe('sanitizeUsageRow', () => {
  it('clamps integers into [0, 2^31-1], cost into [0, 1e9) at 8 decimals, and strips NUL from text', () => {
    const { row: r, changed } = sanitizeUsageRow(
      row('a', {
        inputTokens: 3e9,
        outputTokens: -4,
        cachedTokens: 2.6,
        latencyMs: NaN,
        ttfbMs: null,
        costUsd: 0.1 + 0.2,
        requestedModel: 'x\u0000y',
        attempts: Infinity,
      }),
    );
    expect(r).toMatchObject({
      inputTokens: 2_147_483_647,
      outputTokens: 0,
      cachedTokens: 3,
      latencyMs: 0,
      ttfbMs: null,
      costUsd: 0.3,
      requestedModel: 'xy',
      attempts: 0,
    });
    expect(changed.sort()).toEqual(['attempts', 'cachedTokens', 'inputTokens', 'latencyMs', 'outputTokens', 'requestedModel']);
  });

  it('refuses negative, non-finite and absurd costs', () => {
    expect(sanitizeUsageRow(row('a', { costUsd: -1 })).row.costUsd).toBe(0);
    expect(sanitizeUsageRow(row('a', { costUsd: NaN })).row.costUsd).toBe(0);
    expect(sanitizeUsageRow(row('a', { costUsd: Infinity })).row.costUsd).toBe(0);
    expect(sanitizeUsageRow(row('a', { costUsd: 5e12 })).row.costUsd).toBe(999_999_999);
    expect(sanitizeUsageRow(row('a', { costUsd: 1.234567891234 })).row.costUsd).toBe(1.23456789);
    expect(sanitizeUsageRow(row('a', { costUsd: 1.234567891234 })).changed).toEqual([]);
  });

  it('leaves a sane row alone (a copy) and fixes invalid dates', () => {
    const input = row('a');
    const { row: r, changed } = sanitizeUsageRow(input);
    expect(r).toEqual(input);
    expect(r).not.toBe(input);
    expect(changed).toEqual([]);
    expect(sanitizeUsageRow(row('a', { startedAt: new Date(NaN) })).changed).toEqual(['startedAt']);
  });
});

describe('LedgerWriter', () => {
  it('splits a refused batch down to the bad row, writes every other row, and counts the bad one', async () => {
    const { db, written, statements } = fakeDb({ poison: new Set(['r5']) });
    const w = writer(db);
    const ids = Array.from({ length: 8 }, (_, i) => `r${i}`);
    for (const id of ids) w.record(row(id));
    expect(await w.drain()).toBe(0);
    expect(written.sort()).toEqual(ids.filter((id) => id !== 'r5').sort());
    expect(w.stats).toMatchObject({ written: 7, poisonRows: 1, failedFlushes: 0, queued: 0 });
    expect(statements.length).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(8)));
    // and the next rows go through as usual
    w.record(row('next'));
    await w.drain();
    expect(written).toContain('next');
  });

  it('keeps a whole batch, in order, when the database itself fails, and writes it once it is back', async () => {
    let down = true;
    const { db, written, statements } = fakeDb({ down: () => down });
    const w = writer(db, 3);
    for (const id of ['a', 'b', 'c', 'd']) w.record(row(id));
    await w.flush();
    await w.flush();
    expect(w.depth).toBe(4);
    expect(w.stats.failedFlushes).toBeGreaterThanOrEqual(1);
    expect(w.stats.poisonRows).toBe(0);
    expect(statements.every((s) => s.length === 3)).toBe(true); // never split for a database failure
    down = false;
    expect(await w.drain()).toBe(0);
    expect(written).toEqual(['a', 'b', 'c', 'd']);
  });

  it('clamps out-of-range numbers before queueing and counts the row', async () => {
    const { db } = fakeDb();
    const w = writer(db);
    w.record(row('x', { inputTokens: 3e9 }));
    expect(w.stats.sanitizedRows).toBe(1);
    await w.drain();
    const params = (db.query as jest.Mock).mock.calls[0][1] as unknown[][];
    expect(params[11]).toEqual([2_147_483_647]); // input_tokens
    expect(params[1]).toEqual([null]); // client_request_id
  });

  it('at shutdown, logs and counts the rows it could not write; a row recorded afterwards is written at once', async () => {
    let down = true;
    const { db, written } = fakeDb({ down: () => down });
    const w = writer(db);
    const error = jest.spyOn((w as any).logger, 'error');
    w.record(row('lost'));
    // (the shutdown drain tries 100 times, 50 ms apart: 2 are enough here)
    const drain = w.drain.bind(w);
    jest.spyOn(w, 'drain').mockImplementation((n?: number) => drain(n ?? 2));
    await w.beforeApplicationShutdown();
    expect(w.stats.lostRows).toBe(1);
    expect(w.depth).toBe(0);
    expect(error).toHaveBeenCalledWith(expect.stringContaining('1 ledger row(s) could not be written at shutdown'));

    down = false;
    w.record(row('straggler'));
    await new Promise((r) => setTimeout(r, 20));
    expect(written).toEqual(['straggler']);
    expect(w.stats.lostRows).toBe(1);
  });

  it('journals every row before queueing it and confirms rows to the journal only once Postgres has them', async () => {
    let down = true;
    const { db } = fakeDb({ poison: new Set(['bad']), down: () => down });
    const events: string[] = [];
    const journal = {
      sent: () => undefined,
      finished: (r: UsageRow) => events.push(`journal ${r.requestId}`),
      confirm: (n: number) => events.push(`confirm ${n}`),
      adoptDead: () => undefined,
    };
    const w = new LedgerWriter(new UsageRepository(db), { ledgerFlushMs: 1000, ledgerBatchSize: 100 } as AppConfig, journal);
    for (const level of ['error', 'warn', 'log'] as const) jest.spyOn((w as any).logger, level).mockImplementation(() => undefined);
    w.record(row('a'));
    w.record(row('bad'));
    w.record(row('b'));
    expect(events).toEqual(['journal a', 'journal bad', 'journal b']);
    await w.flush();
    // the database was down: nothing confirmed, the rows stay journaled
    expect(events).toHaveLength(3);
    down = false;
    await w.drain();
    // written rows and the poison row (dropped for good) are confirmed, oldest first
    expect(events.slice(3).reduce((n, e) => n + Number(e.split(' ')[1]), 0)).toBe(3);
    expect(w.depth).toBe(0);
  });
});
