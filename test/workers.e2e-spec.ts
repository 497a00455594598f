import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChildServer,
  FakeProvider,
  Stack,
  TEST_ADMIN_TOKEN,
  buildGateway,
  eventually,
  metricValue,
  parseExposition,
  spawnGateway,
  startStack,
} from '@gw/testing';

jest.setTimeout(120_000);

const REDIS = process.env.TEST_REDIS_URL;
// scripts/test.mjs sets REQUIRE_REDIS=1 for the CI run that has Redis: skipping there would be a silent pass.
if (!REDIS && process.env.REQUIRE_REDIS === '1') throw new Error('workers.e2e-spec: REQUIRE_REDIS=1 but TEST_REDIS_URL is not set');
if (!REDIS) {
  console.warn('workers.e2e-spec: TEST_REDIS_URL is not set, so the GATEWAY_WORKERS=2 tests are SKIPPED (not passed): more than one worker needs Redis.');
}
const withRedis = REDIS ? describe : describe.skip;

const MODEL = 'workers-model';
const METRICS_TOKEN = 'workers-metrics-token-0123456789';

interface Call {
  status: Promise<number>;
  /** Resolves at the first byte of the body. */
  firstByte: Promise<void>;
  /** The whole body, or `error:<message>` when the connection broke. */
  body: Promise<string>;
}

/**
 * One request on its own connection (no keep-alive pool): node:cluster hands connections to the workers in
 * turn, so consecutive calls alternate between the two workers.
 */
function call(base: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Call {
  let status!: (s: number) => void;
  let first!: () => void;
  let done!: (b: string) => void;
  const out: Call = {
    status: new Promise((r) => (status = r)),
    firstByte: new Promise((r) => (first = r)),
    body: new Promise((r) => (done = r)),
  };
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const req = request(
    `${base}${path}`,
    { method, agent: false, headers: { ...headers, ...(payload ? { 'content-type': 'application/json' } : {}) } },
    (res) => {
      status(res.statusCode ?? 0);
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        first();
        text += d;
      });
      res.on('end', () => done(text));
      res.on('error', (e) => done(`error:${e.message}`));
      res.on('aborted', () => done(`error:aborted`));
    },
  );
  req.on('error', (e) => {
    status(0);
    first();
    done(`error:${e.message}`);
  });
  req.end(payload);
  return out;
}

describe('GATEWAY_WORKERS at start (no Redis needed)', () => {
  it('a worker that fails to start stops the others, and the gateway exits 1 with its message, as one process would', () => {
    const built = buildGateway();
    try {
      const r = spawnSync(process.execPath, [join(built, 'apps/gateway/src/main.js')], {
        cwd: built,
        // Config the primary accepts (it never connects to this Redis) but the workers refuse while building the app.
        env: {
          PATH: process.env.PATH,
          GATEWAY_WORKERS: '2',
          REDIS_URL: 'redis://127.0.0.1:1',
          DATABASE_URL: 'postgres://gateway@127.0.0.1:1/gateway',
          EGRESS_DENY: 'not-a-valid :: entry/99',
          DATA_DIR: join(built, 'data'),
          GATEWAY_PORT: '0',
        },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('EGRESS_DENY');
      expect(r.stdout).toMatch(/worker \d \(pid \d+\) exited with code 1 before the gateway started: stopping the others and exiting/);
      expect(r.stdout).toContain('all workers have exited, some with an error');
    } finally {
      rmSync(built, { recursive: true, force: true });
    }
  });

  it('refuses to start with more than one worker, naming the variable and why', () => {
    const built = buildGateway();
    try {
      const r = spawnSync(process.execPath, [join(built, 'apps/gateway/src/main.js')], {
        cwd: built,
        env: { PATH: process.env.PATH, GATEWAY_WORKERS: '2', DATA_DIR: join(built, 'data') },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('GATEWAY_WORKERS=2 needs REDIS_URL');
      // The same from `.env` (read before the choice of workers, as the app reads it).
      writeFileSync(join(built, '.env'), 'GATEWAY_WORKERS=3\n');
      const fromFile = spawnSync(process.execPath, [join(built, 'apps/gateway/src/main.js')], {
        cwd: built,
        env: { PATH: process.env.PATH, DATA_DIR: join(built, 'data') },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(fromFile.status).toBe(1);
      expect(fromFile.stderr).toContain('GATEWAY_WORKERS=3 needs REDIS_URL');
    } finally {
      rmSync(built, { recursive: true, force: true });
    }
  });
});

withRedis('a gateway with GATEWAY_WORKERS=2 (one port, two event loops, one Redis)', () => {
  let fake: FakeProvider;
  let stack: Stack;
  let built: string;
  let dataDir: string;
  let gw: ChildServer;

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai', models: [MODEL] });
    stack = await startStack();
    const p = await stack.api('POST', '/admin/providers', { name: 'openai', kind: 'openai', baseUrl: fake.baseUrl });
    expect((await stack.api('POST', '/admin/routes', { modelPattern: MODEL, targets: [{ providerId: p.body.id }] })).status).toBe(201);
    expect((await stack.api('POST', '/admin/prices', { modelPattern: MODEL, inputPerM: 1, outputPerM: 2 })).status).toBe(201);
    tenants.count = await tenantWithKey();
    tenants.rpm = await tenantWithKey({ requestsPerMinute: 10 });
    tenants.concurrency = await tenantWithKey({ concurrentRequests: 3 });
    tenants.kill = await tenantWithKey();
    tenants.drain = await tenantWithKey();
    built = buildGateway();
    dataDir = mkdtempSync(join(tmpdir(), 'gw-workers-'));
    gw = await spawnGateway(built, {
      DATABASE_URL: stack.dbUrl,
      MASTER_KEY: stack.config.masterKey,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      REDIS_URL: REDIS,
      GATEWAY_WORKERS: '2',
      METRICS_TOKEN,
      LEDGER_FLUSH_MS: '100',
      LIMITS_LEASE_MS: '3000',
      AUTH_REDIS_NAMESPACE: `workers-${randomBytes(4).toString('hex')}`,
    });
    await eventually(() => gw.output().includes('all 2 workers listening'), 30_000, 50, 'both workers to listen');
  });

  afterAll(async () => {
    await gw?.stop();
    await stack?.close();
    await fake?.close();
    if (built) rmSync(built, { recursive: true, force: true });
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** Keys are created before the gateway starts, so both workers load them with their first key set. */
  const tenants: Record<string, { tenantId: string; tenant: string; secret: string }> = {};
  async function tenantWithKey(keyLimits: object = {}) {
    const t = await stack.api('POST', '/admin/tenants', { name: `workers-${randomBytes(4).toString('hex')}` });
    const k = await stack.api('POST', `/admin/tenants/${t.body.id}/keys`, { name: 'k', limits: keyLimits });
    expect(k.status).toBe(201);
    return { tenantId: t.body.id as string, tenant: t.body.name as string, secret: k.body.secret as string };
  }

  const chat = (secret: string, marker: string, stream = false) =>
    call(
      gw.url,
      'POST',
      '/v1/chat/completions',
      { authorization: `Bearer ${secret}`, 'x-request-id': marker },
      {
        model: MODEL,
        messages: [{ role: 'user', content: marker }],
        max_tokens: 50,
        stream,
      },
    );

  async function metrics() {
    const c = call(gw.url, 'GET', '/metrics', { authorization: `Bearer ${METRICS_TOKEN}` });
    expect(await c.status).toBe(200);
    return parseExposition(await c.body);
  }

  const workerPids = () => [...gw.output().matchAll(/worker (\d) \(pid (\d+)\) listening/g)].map((m) => ({ slot: Number(m[1]), pid: Number(m[2]) }));
  const rowsOf = (tenantId: string) =>
    stack.sql<{ client_request_id: string; status: number; error_code: string | null }>(
      'SELECT client_request_id, status, error_code FROM usage_records WHERE tenant_id = $1',
      [tenantId],
    );

  it('serves on both workers, and /metrics (whichever worker answers) counts every request exactly once', async () => {
    const { tenantId, tenant, secret } = tenants.count;
    const N = 20;
    for (let i = 0; i < N; i++) {
      const c = chat(secret, `count-${i}`);
      expect(await c.status).toBe(200);
      await c.body;
    }
    // Four scrapes on four connections: both workers answer some; each shows the whole gateway.
    for (let i = 0; i < 4; i++) {
      const m = await metrics();
      expect(metricValue(m, 'gateway_requests_total', { tenant })).toBe(N);
      expect(metricValue(m, 'gateway_request_duration_seconds_count', { tenant })).toBe(N);
      expect(metricValue(m, 'gateway_tokens_total', { tenant, direction: 'output' })).toBeGreaterThan(0);
      expect(metricValue(m, 'gateway_workers')).toBe(2);
      // Both event loops served (connections are handed out in turn), and their shares add up.
      const perWorker = [1, 2].map((w) => metricValue(m, 'gateway_worker_requests_total', { worker: String(w) }));
      expect(perWorker.every((n) => n >= N / 2 - 2)).toBe(true);
      // Process metrics stay per worker.
      expect(m.samples.filter((s) => s.name === 'process_resident_memory_bytes').map((s) => s.labels.worker)).toEqual(['1', '2']);
      // One family each: not one per worker.
      expect(m.text.match(/^# TYPE gateway_requests_total /gm)).toHaveLength(1);
    }
    // The primary's own metrics are documented with their type and labels (docs/operations.md).
    const doc = readFileSync(join(__dirname, '..', 'docs', 'operations.md'), 'utf8');
    const m = await metrics();
    for (const [name, type, labels] of [
      ['gateway_workers', 'gauge', 'none'],
      ['gateway_worker_requests_total', 'counter', '`worker`'],
      ['gateway_worker_restarts_total', 'counter', 'none'],
    ]) {
      expect(m.types.get(name)).toBe(type);
      expect(doc).toContain(`| \`${name}\` | ${type} | ${labels} |`);
    }
    // The metrics token still applies, on every worker.
    for (let i = 0; i < 2; i++) expect(await call(gw.url, 'GET', '/metrics', {}).status).toBe(401);
    // Every request has its ledger row.
    await eventually(async () => (await rowsOf(tenantId)).length === N, 10_000, 100, 'the ledger rows of both workers');
  });

  it('an RPM limit of 10 admits exactly 10 of 20 requests spread over both workers', async () => {
    const { tenant, secret } = tenants.rpm;
    const before = await metrics();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const c = chat(secret, `rpm-${i}`);
      statuses.push(await c.status);
      await c.body;
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.slice(0, 10).every((s) => s === 200)).toBe(true);
    expect(statuses.slice(10).every((s) => s === 429)).toBe(true);
    const after = await metrics();
    expect(metricValue(after, 'gateway_rate_limited_total', { tenant, kind: 'requests' })).toBe(10);
    // both workers took part
    for (const w of ['1', '2']) {
      const served = metricValue(after, 'gateway_worker_requests_total', { worker: w }) - metricValue(before, 'gateway_worker_requests_total', { worker: w });
      expect(served).toBeGreaterThanOrEqual(8);
    }
  });

  it('a concurrency limit of 3 holds exactly 3 streams across both workers', async () => {
    const { secret } = tenants.concurrency;
    fake.options.chunkDelayMs = 300;
    fake.options.streamChunks = 10;
    try {
      const calls = Array.from({ length: 8 }, (_, i) => chat(secret, `conc-${i}`, true));
      const statuses = await Promise.all(calls.map((c) => c.status));
      expect(statuses.filter((s) => s === 200)).toHaveLength(3);
      expect(statuses.filter((s) => s === 429)).toHaveLength(5);
      const bodies = await Promise.all(calls.map((c) => c.body));
      for (const [i, b] of bodies.entries()) if (statuses[i] === 200) expect(b).toContain('[DONE]');
    } finally {
      fake.options.chunkDelayMs = 0;
      fake.options.streamChunks = 5;
    }
  });

  it('restarts a killed worker, and its journal is replayed: every request keeps its ledger row, counters never go down', async () => {
    const { tenantId, tenant, secret } = tenants.kill;
    const before = await metrics();
    const pids = workerPids();
    const victim = pids.find((p) => p.slot === 1)!;
    fake.options.chunkDelayMs = 500;
    fake.options.streamChunks = 20;
    let calls: Call[];
    let cut = 0;
    try {
      calls = Array.from({ length: 6 }, (_, i) => chat(secret, `kill-req-${i}`, true));
      expect(await Promise.all(calls.map((c) => c.status))).toEqual([200, 200, 200, 200, 200, 200]);
      await Promise.all(calls.map((c) => c.firstByte));
      process.kill(victim.pid, 'SIGKILL');
      const bodies = await Promise.all(calls.map((c) => c.body));
      cut = bodies.filter((b) => !b.includes('[DONE]')).length;
      // The primary hands connections to the workers in turn, though not strictly under a burst: the killed one
      // held some of the streams, never all.
      expect(cut).toBeGreaterThanOrEqual(1);
      expect(cut).toBeLessThanOrEqual(5);
    } finally {
      fake.options.chunkDelayMs = 0;
      fake.options.streamChunks = 5;
    }
    await eventually(() => workerPids().some((p) => p.slot === 1 && p.pid !== victim.pid), 30_000, 100, 'worker 1 to be restarted');
    expect(gw.output()).toContain(`worker 1 (pid ${victim.pid}) killed by SIGKILL: restarting it`);
    // Its streams, sent upstream and never finished, are billed at their reservation from its journal.
    const rows = await eventually(
      async () => {
        const r = await rowsOf(tenantId);
        return r.length === 6 && r;
      },
      20_000,
      200,
      "the killed worker's journal to be replayed",
    ).catch((e: Error) => {
      throw new Error(`${e.message}\ngateway output:\n${gw.output().slice(-5000)}`);
    });
    const restarted = rows.filter((r) => r.error_code === 'gateway_restarted');
    // exactly the streams the kill cut short
    expect(restarted).toHaveLength(cut);
    expect(rows.filter((r) => r.status === 200)).toHaveLength(6 - restarted.length);
    expect(gw.output()).toContain('adopted the journal of a dead gateway process');
    // The aggregate never goes down: the dead worker's counters stay in the sums.
    const after = await metrics();
    expect(metricValue(after, 'gateway_worker_restarts_total')).toBe(1);
    expect(metricValue(after, 'gateway_workers')).toBe(2);
    for (const name of ['gateway_requests_total', 'http_requests_total', 'gateway_request_duration_seconds_count']) {
      expect(metricValue(after, name)).toBeGreaterThanOrEqual(metricValue(before, name));
    }
    // the new worker serves
    const c = chat(secret, 'after-restart');
    expect(await c.status).toBe(200);
    await c.body;
    expect(metricValue(after, 'gateway_requests_total', { tenant })).toBeGreaterThanOrEqual(6 - restarted.length);
  });

  it('SIGTERM: both workers drain their streams, flush every ledger row, and the gateway exits 0', async () => {
    const { tenantId, secret } = tenants.drain;
    fake.options.chunkDelayMs = 200;
    fake.options.streamChunks = 10;
    const calls = Array.from({ length: 6 }, (_, i) => chat(secret, `drain-req-${i}`, true));
    expect(await Promise.all(calls.map((c) => c.status))).toEqual([200, 200, 200, 200, 200, 200]);
    await Promise.all(calls.map((c) => c.firstByte));
    gw.child.kill('SIGTERM');
    const bodies = await Promise.all(calls.map((c) => c.body));
    for (const b of bodies) expect(b).toContain('[DONE]');
    expect(await gw.exited).toBe(0);
    expect(gw.output()).toContain('all workers have exited');
    expect(gw.output().match(/ledger flushed/g)?.length).toBeGreaterThanOrEqual(2);
    const rows = await rowsOf(tenantId);
    expect(rows).toHaveLength(6);
    expect(
      rows
        .filter((r) => r.status === 200)
        .map((r) => r.client_request_id)
        .sort(),
    ).toEqual(calls.map((_, i) => `drain-req-${i}`).sort());
  });
});
