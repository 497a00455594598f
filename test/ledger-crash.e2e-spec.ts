import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LimitsService, toUnits } from '@gw/limits';
import { ChildServer, FakeProvider, Stack, TEST_ADMIN_TOKEN, buildGateway, eventually, spawnGateway, startPgliteProcess, startStack } from '@gw/testing';

jest.setTimeout(120_000);

const MODEL = 'crash-model';
const REDIS = process.env.TEST_REDIS_URL;
const GATEWAY_WORKERS = REDIS ? 2 : 1;
const STREAMS = 16;
const WORKERS = 24;
const LEASE_MS = 3_000;

/**
 * `kill -9` of a gateway under load loses no usage: the gateway runs as its own OS process, the database in
 * another (PostgreSQL from TEST_DATABASE_URL, else PGlite served by its own process), the load comes from
 * here. After the kill and a restart on the same data dir, every request that got a 200 has its ledger row,
 * and every request the upstream received is billed (the streams cut by the kill at their reservation).
 */
describe(`SIGKILL of a gateway under load (${process.env.TEST_DATABASE_URL ? 'PostgreSQL' : 'PGlite in its own process'}${REDIS ? ' + Redis' : ''})`, () => {
  let fake: FakeProvider;
  let pglite: Awaited<ReturnType<typeof startPgliteProcess>> | undefined;
  let stack: Stack;
  let built: string;
  let dataDir: string;
  let gateway: ChildServer | undefined;
  let secret: string;
  let tenantId: string;
  let keyId: string;

  const env = () => ({
    DATABASE_URL: stack.dbUrl,
    MASTER_KEY: stack.config.masterKey,
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    // Rows wait in memory up to a second, as in production (500 ms): the kill always finds some there.
    LEDGER_FLUSH_MS: '1000',
    // Small segments: the load rotates and checkpoints several while it runs.
    JOURNAL_SEGMENT_BYTES: String(64 * 1024),
    LIMITS_LEASE_MS: String(LEASE_MS),
    REDIS_URL: REDIS,
    // With Redis, a gateway of two workers (GATEWAY_WORKERS): the SIGKILL hits its primary, and node:cluster ends
    // both workers at once, unflushed; without Redis, one process.
    GATEWAY_WORKERS: String(GATEWAY_WORKERS),
  });

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai', models: [MODEL] });
    if (!process.env.TEST_DATABASE_URL) pglite = await startPgliteProcess();
    stack = await startStack(pglite ? { databaseUrl: pglite.dbUrl } : {});
    const p = await stack.api('POST', '/admin/providers', { name: 'openai', kind: 'openai', baseUrl: fake.baseUrl });
    expect((await stack.api('POST', '/admin/routes', { modelPattern: MODEL, targets: [{ providerId: p.body.id }] })).status).toBe(201);
    expect((await stack.api('POST', '/admin/prices', { modelPattern: MODEL, inputPerM: 1, outputPerM: 2 })).status).toBe(201);
    // A budget, so that admissions hold reservations (in Redis, when there) like a real team's.
    const t = await stack.api('POST', '/admin/tenants', { name: 'crash-team', limits: { dailyBudgetUsd: 1000 } });
    const k = await stack.api('POST', `/admin/tenants/${t.body.id}/keys`, { name: 'k' });
    [tenantId, keyId, secret] = [t.body.id, k.body.id, k.body.secret];
    built = buildGateway();
    dataDir = mkdtempSync(join(tmpdir(), 'gw-crash-'));
  });

  afterAll(async () => {
    await gateway?.stop();
    await stack?.close();
    await pglite?.stop();
    await fake?.close();
    if (built) rmSync(built, { recursive: true, force: true });
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const chat = (url: string, marker: string, stream: boolean, signal?: AbortSignal) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', 'x-request-id': marker },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: marker }], max_tokens: 50, stream }),
      signal,
    });
  const responses = (url: string, marker: string) =>
    fetch(`${url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', 'x-request-id': marker },
      body: JSON.stringify({ model: MODEL, input: marker, max_output_tokens: 50, stream: true }),
    });

  it('loses no row of a 200 and bills every request the upstream received', async () => {
    gateway = await spawnGateway(built, env());
    const url = gateway.url;
    /** Request ids of answers that came back 200 (the streams: whose head and first chunk arrived). */
    const ok: string[] = [];
    /** Of those, the complete (non-stream) answers: their rows must be the real ones, not estimates. */
    const complete: string[] = [];

    // Streams that will still be running at the kill (40 chunks, 250 ms apart): chat and, for a quarter, Responses.
    fake.options.chunkDelayMs = 250;
    fake.options.streamChunks = 40;
    const streams = await Promise.all(
      Array.from({ length: STREAMS }, async (_, i) => {
        const res = i % 4 === 0 ? await responses(url, `stream-${i}`) : await chat(url, `stream-${i}`, true);
        expect(res.status).toBe(200);
        const reader = res.body!.getReader();
        expect((await reader.read()).done).toBe(false);
        ok.push(res.headers.get('x-request-id')!);
        return reader;
      }),
    );

    // Non-stream load from many workers until the kill.
    let stop = false;
    let sent = 0;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const marker = `load-${w}-${i}`;
        sent++;
        try {
          const res = await chat(url, marker, false);
          const body = (await res.json()) as { choices?: unknown[] };
          if (res.status === 200 && body.choices) {
            ok.push(res.headers.get('x-request-id')!);
            complete.push(res.headers.get('x-request-id')!);
          }
        } catch {
          return; // the gateway is gone
        }
      }
    };
    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
    await eventually(() => ok.length >= STREAMS + 300, 20_000, 20, '300 answered requests');
    await gateway.kill();
    stop = true;
    await Promise.all(workers);
    for (const r of streams) await r.cancel().catch(() => undefined);
    const okAtKill = ok.length;

    // What Postgres has without the journal: every stream, and whatever finished in the last flush interval, is missing.
    const idsIn = async (ids: string[]) =>
      new Set((await stack.sql<{ request_id: string }>('SELECT request_id FROM usage_records WHERE request_id = ANY($1)', [ids])).map((r) => r.request_id));
    const before = await idsIn(ok);
    const lostWithoutJournal = ok.filter((id) => !before.has(id)).length;

    console.log(
      `SIGKILL after ${sent} requests sent, ${okAtKill} answered 200 (${STREAMS} of them streams in flight); ${lostWithoutJournal} of those had no ledger row at the kill`,
    );
    expect(lostWithoutJournal).toBeGreaterThanOrEqual(STREAMS);

    // Restart on the same data dir: it replays the dead journal before it is ready.
    const t0 = Date.now();
    gateway = await spawnGateway(built, env());
    const restartMs = Date.now() - t0;
    // One process replays the dead journal before it is ready. With workers, a dead primary's workers can outlive
    // it by a moment (they exit when their channel closes): a journal whose process still lived at the restart is
    // replayed by the next scan (every 5 s) instead.
    let missing: string[] = [];
    await eventually(
      async () => {
        const after = await idsIn(ok);
        missing = ok.filter((id) => !after.has(id));
        return GATEWAY_WORKERS === 1 || missing.length === 0;
      },
      15_000,
      250,
      'every 200 to have its row',
    ).catch(() => undefined);

    console.log(`restart + replay took ${restartMs} ms; 200 answers without a row after it: ${missing.length}`);
    expect(missing).toEqual([]);
    expect(gateway.output()).toContain('replayed dead journal');
    // A complete answer's row is its real one (status 200, the upstream's usage), journaled before its last byte.
    const wrong = await stack.sql(
      'SELECT request_id, status, error_code FROM usage_records WHERE request_id = ANY($1) AND (status <> 200 OR error_code IS NOT NULL)',
      [complete],
    );
    expect(wrong).toEqual([]);

    // Every request the upstream received is billed: its row (by the marker the client sent as x-request-id) has a cost.
    const received = [
      ...fake.requestsTo('/chat/completions').map((r) => r.body.messages[0].content as string),
      ...fake.requestsTo('/responses').map((r) => r.body.input as string),
    ];
    expect(received.length).toBeGreaterThanOrEqual(okAtKill);
    const rows = await stack.sql<{
      client_request_id: string;
      endpoint: string;
      cost_usd: string;
      status: number;
      error_code: string | null;
      input_tokens: number;
      output_tokens: number;
    }>('SELECT client_request_id, endpoint, cost_usd, status, error_code, input_tokens, output_tokens FROM usage_records WHERE tenant_id = $1', [tenantId]);
    const byMarker = new Map(rows.map((r) => [r.client_request_id, r]));
    const unbilled = received.filter((m) => !(Number(byMarker.get(m)?.cost_usd ?? 0) > 0));
    expect(unbilled).toEqual([]);
    // one row per request, never two
    expect(byMarker.size).toBe(rows.length);

    // The streams cut by the kill are billed at their reservation: prompt estimate + max_tokens, priced.
    for (let i = 0; i < STREAMS; i++) {
      const r = byMarker.get(`stream-${i}`)!;
      expect(r).toMatchObject({ status: 502, error_code: 'gateway_restarted', output_tokens: 50, endpoint: i % 4 === 0 ? 'responses' : 'chat' });
      expect(r.input_tokens).toBeGreaterThan(0);
      expect(Number(r.cost_usd)).toBeCloseTo((r.input_tokens * 1 + 50 * 2) / 1e6, 8);
    }
    const restarted = rows.filter((r) => r.error_code === 'gateway_restarted').length;

    console.log(`${rows.length} ledger rows; ${restarted} billed at their reservation (sent upstream, unfinished at the kill)`);

    // The dead processes' journals are gone (replayed once); only the new processes' own remain, one per worker
    // (the gateway is ready with its first worker; the second may still be starting).
    await eventually(() => readdirSync(join(dataDir, 'journal')).length === GATEWAY_WORKERS, 30_000, 100, 'one journal per live worker');
    expect(readdirSync(join(dataDir, 'journal'))).toHaveLength(GATEWAY_WORKERS);

    if (REDIS) {
      // The budget counter and the ledger agree exactly once the dead process's reservations have run out
      // (its settled spend was added by the replay; its holds ended with their leases, nobody renewing them).
      const limits = stack.gateway.get(LimitsService);
      const ledgerUnits = async () =>
        toUnits(Number((await stack.sql('SELECT coalesce(sum(cost_usd), 0) AS s FROM usage_records WHERE tenant_id = $1', [tenantId]))[0].s));
      let probe = 0;
      await eventually(
        async () => {
          // an admission runs the script that gives expired leases back
          await (await chat(gateway!.url, `probe-req-${probe++}`, false)).text();
          return (await limits.counters(tenantId, keyId)).tenant.daily.reservedUnits === 0;
        },
        LEASE_MS * 4,
        250,
        "the dead process's reservations to run out",
      );
      await eventually(
        async () => (await ledgerUnits()) === (await limits.counters(tenantId, keyId)).tenant.daily.spentUnits,
        5_000,
        100,
        'the ledger to match the Redis counter',
      );
    }
  });
});
