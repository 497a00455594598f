import type { AppConfig } from '@gw/config';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UsageRow } from './usage.repository';
import { FileUsageJournal, GATEWAY_RESTARTED, SentRecord } from './usage.journal';

const row = (requestId: string, over: Partial<UsageRow> = {}): UsageRow => ({
  requestId,
  clientRequestId: null,
  tenantId: 't',
  keyId: 'k',
  routeId: null,
  providerId: null,
  endpoint: 'chat',
  requestedModel: 'm',
  upstreamModel: 'm',
  status: 200,
  errorCode: null,
  inputTokens: 3,
  outputTokens: 4,
  cachedTokens: 0,
  costUsd: 0.5,
  latencyMs: 10,
  ttfbMs: 5,
  streamed: false,
  attempts: 1,
  startedAt: new Date('2026-01-10T10:00:00Z'),
  finishedAt: new Date('2026-01-10T10:00:01Z'),
  ...over,
});
const sent = (requestId: string): SentRecord => ({
  requestId,
  clientRequestId: 'c',
  tenantId: 't',
  keyId: 'k',
  routeId: null,
  providerId: null,
  endpoint: 'chat',
  requestedModel: 'm',
  upstreamModel: 'm',
  streamed: true,
  startedAt: new Date('2026-01-10T10:00:00Z'),
  inputTokens: 10,
  outputTokens: 90,
  costUsd: 0.25,
});

describe('FileUsageJournal', () => {
  let root: string;
  const open: FileUsageJournal[] = [];
  const journal = (segmentBytes = 1 << 20) => {
    const j = new FileUsageJournal({ dataDir: root, journalSegmentBytes: segmentBytes } as AppConfig);
    j.onModuleInit();
    open.push(j);
    return j;
  };
  const segments = (j: FileUsageJournal) => readdirSync(j.dir).filter((n) => n.endsWith('.jsonl'));

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'gw-journal-'));
  });
  afterEach(() => {
    for (const j of open.splice(0)) j.onApplicationShutdown();
    rmSync(root, { recursive: true, force: true });
  });

  it('lives under <data dir>/journal, one directory per process instance', () => {
    const a = journal();
    const b = journal();
    expect(a.dir.startsWith(join(root, 'journal'))).toBe(true);
    expect(readdirSync(join(root, 'journal')).sort()).toEqual([a.instance, b.instance].sort());
  });

  it('never adopts the journal of a live instance, and adopts one whose owner is gone', () => {
    const a = journal();
    const b = journal();
    a.sent(sent('req_live'));
    expect(b.adoptDead()).toBeUndefined();
    const other = journal();
    other.finished(row('req_done'));
    other.sent(sent('req_cut'));
    other.finished(row('req_cut2'));
    simulateDeath(other);
    // a write torn by the kill is skipped
    appendFileSync(join(other.dir, '00000001.jsonl'), '{"f":{"requestId":"req_to');

    const found = b.adoptDead()!;
    expect(found.rows.map((r) => r.requestId).sort()).toEqual(['req_cut2', 'req_done']);
    expect(found.rows[0].startedAt).toBeInstanceOf(Date);
    expect(found.orphans).toHaveLength(1);
    expect(found.orphans[0]).toMatchObject({
      requestId: 'req_cut',
      status: 502,
      errorCode: GATEWAY_RESTARTED,
      inputTokens: 10,
      outputTokens: 90,
      costUsd: 0.25,
      streamed: true,
    });
    // moved into b's own directory: nobody else can take it, and a's is untouched
    expect(readdirSync(join(root, 'journal')).sort()).toEqual([a.instance, b.instance].sort());
    expect(a.adoptDead()).toBeUndefined();
    expect(b.adoptDead()!.orphans).toHaveLength(1); // read again until released
    found.release();
    expect(b.adoptDead()).toBeUndefined();
  });

  it('checkpoints: closed segments go once their rows are confirmed; requests in flight are carried forward', () => {
    const j = journal(64 * 1024);
    j.sent(sent('req_long'));
    const pad = 'x'.repeat(900);
    for (let i = 0; i < 200; i++) j.finished(row(`req_${i}`, { requestedModel: pad }));
    expect(segments(j).length).toBeGreaterThan(2);
    j.confirm(150);
    const left = segments(j);
    expect(left.length).toBeLessThan(4);
    j.confirm(50);
    expect(segments(j)).toHaveLength(1);
    // the request still in flight was carried into the open segment, so a crash now still bills it
    const b = journal();
    simulateDeath(j);
    const found = b.adoptDead()!;
    expect(found.orphans.map((o) => o.requestId)).toEqual(['req_long']);
  });

  it('an idle journal whose rows are all confirmed starts its segment over; a clean shutdown removes it', () => {
    const j = journal();
    j.finished(row('req_1'));
    j.confirm(1);
    const [seg] = segments(j);
    expect(statSync(join(j.dir, seg)).size).toBe(0);
    j.onApplicationShutdown();
    open.splice(open.indexOf(j), 1);
    expect(readdirSync(join(root, 'journal'))).toEqual([]);
  });

  it('starts a new journal, with its requests in flight, if its directory was taken while it lives', () => {
    const j = journal();
    jest.spyOn((j as any).logger, 'error').mockImplementation(() => undefined);
    j.sent(sent('req_inflight'));
    rmSync(j.dir, { recursive: true, force: true });
    (j as any).beat();
    j.finished(row('req_after'));
    simulateDeath(j);
    const found = journal().adoptDead()!;
    expect(found.orphans.map((o) => o.requestId)).toEqual(['req_inflight']);
    expect(found.rows.map((r) => r.requestId)).toEqual(['req_after']);
  });

  it('keeps a journal with unconfirmed rows at shutdown, for the next start', () => {
    const j = journal();
    j.finished(row('req_1'));
    j.onApplicationShutdown();
    open.splice(open.indexOf(j), 1);
    const next = journal();
    expect(next.adoptDead()!.rows.map((r) => r.requestId)).toEqual(['req_1']);
  });
});

/**
 * What a SIGKILL leaves: the directory as it was, its owner (same host, same pid, as after a container
 * restart) no longer open in this process.
 */
function simulateDeath(j: FileUsageJournal): void {
  writeFileSync(join(j.dir, 'owner.json'), JSON.stringify({ host: hostname(), pid: process.pid, instance: `${j.instance}-dead`, startedAt: '' }));
}
