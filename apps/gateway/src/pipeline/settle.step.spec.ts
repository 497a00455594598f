import { Errors } from '@gw/common';
import type { AppConfig } from '@gw/config';
import { LedgerWriter, PriceTable, UsageRow } from '@gw/metering';
import type { GatewayMetrics } from '@gw/observability';
import type { Response } from 'express';
import type { DrainService } from '../health/drain.service';
import { ClientGone } from './call-context';
import { context, target } from './pipeline.spec-helpers';
import { SettleStep } from './settle.step';

/** A real price table (no rows: the fallback 10/30 USD per million tokens), a ledger and metrics that keep what they get. */
function setup() {
  const prices = new PriceTable(
    { find: async () => [] } as never,
    { subscribe: () => () => undefined } as never,
    { defaultPricePerMInput: 10, defaultPricePerMOutput: 30, unknownModelPricing: 'fallback' } as AppConfig,
  );
  const rows: UsageRow[] = [];
  const observed: { status: number; costUsd: number }[] = [];
  const ledger = { record: (r: UsageRow) => rows.push(r) } as unknown as LedgerWriter;
  const metrics = { watchLedger() {}, watchPrices() {}, finished: (o: { status: number; costUsd: number }) => observed.push(o) } as unknown as GatewayMetrics;
  const untracked: unknown[] = [];
  const drain = { untrack: (c: unknown) => untracked.push(c) } as unknown as DrainService;
  return { settle: new SettleStep(prices, ledger, metrics, drain), rows, observed, untracked };
}

/** Just enough of a response to see what was written, and in which order relative to the ledger row. */
function response(log: string[], headersSent = false) {
  return {
    headersSent,
    writableEnded: false,
    writeHead: (status: number, h: Record<string, string>) => log.push(`head ${status} ${h['content-type']}`),
    end: (body?: string) => log.push(`end ${body ?? ''}`),
  } as unknown as Response;
}

describe('SettleStep', () => {
  it('one ledger row and one metrics observation, however often it is called; the reservation settled at the cost', () => {
    const { settle, rows, observed, untracked } = setup();
    const ctx = context();
    ctx.target = target();
    ctx.upstreamModel = 'up-model';
    ctx.usage = { inputTokens: 1000, outputTokens: 500, cachedTokens: 0, reasoningTokens: 0 };
    const settled: unknown[] = [];
    ctx.admission = { settle: (x: unknown) => settled.push(x), release: () => settled.push('released') } as never;
    settle.settle(ctx);
    settle.settle(ctx);
    expect(rows).toHaveLength(1);
    expect(observed).toHaveLength(1);
    expect(rows[0].costUsd).toBeCloseTo(0.025, 10);
    expect(settled).toEqual([{ tokens: 1500, costUsd: rows[0].costUsd }]);
    expect(untracked).toEqual([ctx]);
  });

  it('nothing used: the reservation is released, not settled at 0', () => {
    const { settle } = setup();
    const ctx = context();
    const settled: unknown[] = [];
    ctx.admission = { settle: (x: unknown) => settled.push(x), release: () => settled.push('released') } as never;
    settle.settle(ctx);
    expect(settled).toEqual(['released']);
  });

  it('an error before the head: OpenAI-shaped JSON, journaled before the last byte', () => {
    const { settle, rows } = setup();
    const log: string[] = [];
    const ctx = context();
    const res = response(log);
    const record = rows.push.bind(rows);
    rows.push = (r: UsageRow) => (log.push('row'), record(r));
    settle.fail(ctx, res, Errors.badRequest('`messages` must be a non-empty array.', 'messages'));
    expect(log[0]).toBe('head 400 application/json');
    expect(log[1]).toBe('row');
    expect(JSON.parse(log[2].slice(4))).toMatchObject({ error: { param: 'messages', type: 'invalid_request_error' } });
    expect([rows[0].status, rows[0].errorCode]).toEqual([400, 'invalid_request_error']);
  });

  it('a client gone after dispatch is a 499 metered on the prompt estimate, never free; nothing written', () => {
    const { settle, rows } = setup();
    const log: string[] = [];
    const ctx = context();
    ctx.attempts = 1;
    ctx.promptEstimate = 50;
    settle.fail(ctx, response(log), new ClientGone());
    settle.settle(ctx);
    expect(log).toEqual([]);
    expect([rows[0].status, rows[0].errorCode, rows[0].inputTokens]).toEqual([499, 'client_closed_request', 50]);
  });
});
