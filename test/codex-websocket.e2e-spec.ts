import {
  FakeProvider,
  ReceivedRequest,
  Stack,
  codexBuiltinConfigToml,
  delta,
  eventually,
  metricValue,
  scrape,
  runCodexExec,
  seedTenant,
  startGatewayReplica,
  startStack,
} from '@gw/testing';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { ResponsesSocketServer } from '../apps/gateway/src/handlers/responses-socket.server';
import { DrainService } from '../apps/gateway/src/health/drain.service';

jest.setTimeout(180_000);

const FINAL = 'Both commands ran: ws-one-7 and ws-two-8.';

/** Two tool calls (the second after a pause, `pause` seconds), then the answer: three model calls. */
function scriptSession(fake: FakeProvider, pause = 0): void {
  fake.script(
    { toolCalls: [{ id: 'call_one', name: 'exec_command', arguments: JSON.stringify({ cmd: 'echo ws-one-$((3+4))' }) }], usage: { input: 900, output: 10 } },
    {
      toolCalls: [{ id: 'call_two', name: 'exec_command', arguments: JSON.stringify({ cmd: `${pause ? `sleep ${pause}; ` : ''}echo ws-two-$((4+4))` }) }],
      usage: { input: 1000, output: 10 },
    },
    { text: FINAL, usage: { input: 1100, output: 12 } },
  );
}

const text = (r: ReceivedRequest): string => JSON.stringify(r.body);

/** What each upstream call carried: every earlier tool output is there (the full history, never a delta). */
function expectFullHistory(calls: ReceivedRequest[]): void {
  expect(calls).toHaveLength(3);
  expect(text(calls[0])).toContain('Run both commands');
  for (const c of calls.slice(1)) expect(text(c)).toContain('Run both commands');
  expect(text(calls[1])).toContain('ws-one-7');
  expect(text(calls[2])).toContain('ws-one-7');
  expect(text(calls[2])).toContain('ws-two-8');
  for (const c of calls) expect(c.body.previous_response_id).toBeUndefined();
  // Each earlier item exactly once: the history the gateway rebuilt has no duplicates.
  const last = calls[2].body;
  if (Array.isArray(last.input)) {
    expect(last.input.filter((i: any) => i.type === 'function_call').map((i: any) => i.call_id)).toEqual(['call_one', 'call_two']);
    expect(last.input.filter((i: any) => i.type === 'function_call_output').map((i: any) => i.call_id)).toEqual(['call_one', 'call_two']);
  } else {
    expect(last.messages.filter((m: any) => m.role === 'tool').map((m: any) => m.tool_call_id)).toEqual(['call_one', 'call_two']);
  }
}

let stack: Stack;
const fakes: Partial<Record<'openai' | 'ollama', FakeProvider>> = {};
let sockets: ResponsesSocketServer;
beforeAll(async () => {
  fakes.openai = await FakeProvider.start({ flavor: 'openai' });
  fakes.ollama = await FakeProvider.start({ flavor: 'ollama' });
  stack = await startStack();
  sockets = stack.gateway.get(ResponsesSocketServer);
});
afterAll(async () => {
  await stack?.close();
  for (const f of Object.values(fakes)) await f.close();
});

describe.each([
  ['pass-through (openai)', 'openai' as const, 'gpt-4o-mini', '/responses'],
  ['translated (ollama)', 'ollama' as const, 'gpt-oss:20b', '/chat/completions'],
])("Codex's built-in provider over the gateway's WebSocket, %s", (_label, flavor, model, upstreamPath) => {
  let fake: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;
  const auth = (secret: string) => ({ 'auth.json': JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: secret }) });

  beforeAll(async () => {
    fake = fakes[flavor]!;
    tenant = await seedTenant(stack, { provider: { kind: flavor, baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: [model] });
    // A first Codex run pays ~1 s of cold start (binary, caches): not counted against either transport below.
    fake.script({ text: 'warm' });
    const warm = await runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: tenant.secret,
      model,
      prompt: 'Say warm.',
      configToml: codexBuiltinConfigToml(stack.baseURL, model),
      codexHomeFiles: auth(tenant.secret),
    });
    expect(warm.code).toBe(0);
    await stack.flushLedger();
    await stack.sql(`DELETE FROM usage_records WHERE tenant_id = $1`, [tenant.tenantId]);
  });
  beforeEach(() => fake.reset());

  it('a multi-turn session with tool calls: no refused upgrade, no reconnect, one ledger row per response, full input upstream; as fast as HTTP', async () => {
    const before = { ...sockets.stats };
    scriptSession(fake);
    const ws = await runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: tenant.secret,
      model,
      prompt: 'Run both commands and report.',
      timeoutMs: 120_000,
      configToml: codexBuiltinConfigToml(stack.baseURL, model),
      codexHomeFiles: auth(tenant.secret),
    });
    if (ws.code !== 0) console.error(ws.stderr);
    expect(ws.code).toBe(0);
    expect(ws.stdout.trim()).toBe(FINAL);
    expect(ws.stderr).not.toContain('Reconnecting');
    expect(ws.stderr).not.toContain('Falling back');
    expect(sockets.stats.upgrades - before.upgrades).toBeGreaterThanOrEqual(1);
    expect(sockets.stats.refused - before.refused).toBe(0);
    const calls = fake.requestsTo(upstreamPath);
    expectFullHistory(calls);
    if (flavor === 'openai') {
      // Codex's headers as over HTTP: each turn's own metadata, and no WebSocket beta (the provider is called over HTTP).
      for (const c of calls) {
        expect(String(c.headers['openai-beta'] ?? '')).not.toContain('responses_websockets');
        expect(JSON.parse(String(c.headers['x-codex-turn-metadata']))).toMatchObject({ request_kind: 'turn' });
      }
    }
    await stack.flushLedger();
    const rows = await stack.sql(`SELECT status FROM usage_records WHERE tenant_id = $1 AND endpoint = 'responses'`, [tenant.tenantId]);
    expect(rows).toEqual([{ status: 200 }, { status: 200 }, { status: 200 }]);

    // The same session through a custom provider (HTTP): the WebSocket costs no extra time.
    fake.reset();
    scriptSession(fake);
    const http = await runCodexExec({ baseUrl: stack.baseURL, apiKey: tenant.secret, model, prompt: 'Run both commands and report.', timeoutMs: 120_000 });
    expect(http.code).toBe(0);
    expect(http.stdout.trim()).toBe(FINAL);
    console.log(`${flavor}: Codex session over the WebSocket ${ws.durationMs} ms, over HTTP (custom provider) ${http.durationMs} ms`);
    // Before, the refused upgrades alone added 6-13 s.
    expect(ws.durationMs).toBeLessThan(http.durationMs + 1_000);
  });
});

describe('A reconnect makes Codex resend its history, and the session completes', () => {
  let fake: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;
  const auth = (secret: string) => ({ 'auth.json': JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: secret }) });

  beforeAll(async () => {
    fake = fakes.openai!;
    tenant = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: ['gpt-4o-mini'] });
  });
  beforeEach(() => fake.reset());

  it('the socket closed between turns (e.g. the replica went away): Codex reconnects with its full history', async () => {
    const before = { ...sockets.stats };
    scriptSession(fake, 2);
    const run = runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: tenant.secret,
      model: 'gpt-4o-mini',
      prompt: 'Run both commands and report.',
      timeoutMs: 120_000,
      configToml: codexBuiltinConfigToml(stack.baseURL, 'gpt-4o-mini'),
      codexHomeFiles: auth(tenant.secret),
    });
    // While the second command sleeps (2 s), the gateway drops every socket.
    await eventually(() => fake.requestsTo('/responses').length === 2, 60_000);
    await eventually(() => sockets.historyBytes() > 0);
    sockets.closeAll();
    const r = await run;
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(FINAL);
    expect(sockets.stats.upgrades - before.upgrades).toBeGreaterThanOrEqual(2);
    expect(sockets.stats.refused - before.refused).toBe(0);
    expectFullHistory(fake.requestsTo('/responses'));
  });

  it('a connection that no longer holds the history (over WS_HISTORY_MAX_BYTES) answers previous_response_not_found; Codex resends in full', async () => {
    await stack.flushLedger();
    const ok = `SELECT status FROM usage_records WHERE tenant_id = $1 AND endpoint = 'responses' AND status = 200`;
    const rowsBefore = (await stack.sql(ok, [tenant.tenantId])).length;
    const replica = await startGatewayReplica(stack, { wsHistoryMaxBytes: 1 });
    const server = replica.app.get(ResponsesSocketServer);
    scriptSession(fake);
    const r = await runCodexExec({
      baseUrl: replica.baseURL,
      apiKey: tenant.secret,
      model: 'gpt-4o-mini',
      prompt: 'Run both commands and report.',
      timeoutMs: 120_000,
      configToml: codexBuiltinConfigToml(replica.baseURL, 'gpt-4o-mini'),
      codexHomeFiles: auth(tenant.secret),
    });
    if (r.code !== 0) console.error(r.stderr);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(FINAL);
    // Silently: Codex retries such a turn at once, without a `Reconnecting` line.
    expect(r.stderr).not.toContain('Reconnecting');
    // Every incremental request was refused and resent in full on a new connection.
    expect(server.stats.upgrades).toBeGreaterThanOrEqual(3);
    expect(server.stats.refused).toBe(0);
    expectFullHistory(fake.requestsTo('/responses'));
    await stack.flushLedger();
    // One row per response; the refused continuations reached no provider and are not metered.
    expect((await stack.sql(ok, [tenant.tenantId])).length - rowsBefore).toBe(3);
  });
});

interface Upgrade {
  ws?: WebSocket;
  status?: number;
  headers?: Record<string, unknown>;
  body?: any;
}

/** Opens `/v1/responses` as a WebSocket: the socket, or the HTTP answer that refused the upgrade. */
function upgrade(gatewayUrl: string, headers: Record<string, string>, path = '/v1/responses'): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(gatewayUrl.replace(/^http/, 'ws') + path, { headers });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    ws.once('error', (e) => {
      if (!e.message.includes('Unexpected server response')) reject(e);
    });
  });
}

/** Sends raw bytes and reads the whole answer (the server closes after it). */
function fetchRaw(gatewayUrl: string, request: string): Promise<string> {
  const { hostname, port } = new URL(gatewayUrl);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(Number(port), hostname, () => s.write(request));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    s.on('error', reject);
  });
}

/** Collects a socket's messages (parsed) and its close code. */
function recorder(ws: WebSocket): { events: any[]; closed: Promise<number> } {
  const events: any[] = [];
  ws.on('message', (d: Buffer) => events.push(JSON.parse(d.toString('utf8'))));
  return { events, closed: new Promise((r) => ws.once('close', (code) => r(code))) };
}

describe('The WebSocket endpoint: upgrade refusals, bad messages, limits', () => {
  let fake: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;
  const bearer = (secret: string) => ({ authorization: `Bearer ${secret}`, 'openai-beta': 'responses_websockets=2026-02-06' });
  const create = (extra: object = {}) => JSON.stringify({ type: 'response.create', model: 'gpt-4o-mini', input: [{ role: 'user', content: 'hi' }], ...extra });

  beforeAll(async () => {
    fake = fakes.openai!;
    tenant = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: ['gpt-4o-mini'] });
  });
  beforeEach(() => fake.reset());

  it('refuses an upgrade without a key, with a wrong key, or on another path: an HTTP answer, never an accepted socket', async () => {
    const before = sockets.stats.refused;
    const metricsBefore = await scrape(`${stack.gatewayUrl}/metrics`);
    const none = await upgrade(stack.gatewayUrl, {});
    expect(none).toMatchObject({ status: 401, body: { error: { code: 'missing_api_key' } } });
    const wrong = await upgrade(stack.gatewayUrl, bearer(`sk-gw-${'x'.repeat(40)}`));
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.type).toBe('invalid_request_error');
    expect(sockets.stats.refused - before).toBe(2);
    const metricsAfter = await scrape(`${stack.gatewayUrl}/metrics`);
    expect(delta(metricsBefore, metricsAfter, 'gateway_websocket_upgrades_total', { result: '401' })).toBe(2);
    expect(delta(metricsBefore, metricsAfter, 'gateway_websocket_upgrades_total', { result: 'accepted' })).toBe(0);
    // Every earlier socket (Codex's, closed when it exited) is counted out.
    await eventually(async () => metricValue(await scrape(`${stack.gatewayUrl}/metrics`), 'gateway_websockets_open') === 0);
    const elsewhere = await upgrade(stack.gatewayUrl, bearer(tenant.secret), '/v1/chat/completions');
    expect(elsewhere).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    // Another protocol (h2c, as `curl --http2` asks on http://): a clear 400, never a hang or a 500.
    const h2c = await fetchRaw(
      stack.gatewayUrl,
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 2\r\n\r\n{}',
    );
    expect(h2c).toMatch(/^HTTP\/1\.1 400 /);
    expect(h2c).toContain('unsupported_upgrade');
  });

  it("a blocked address's upgrades get 429 (the failed-auth budget is the HTTP one), its valid key too", async () => {
    const replica = await startGatewayReplica(stack, { trustedProxies: ['127.0.0.1/32'] });
    const from = (ip: string, h: Record<string, string>) => ({ ...h, 'x-forwarded-for': ip });
    const statuses: number[] = [];
    for (let i = 0; i < 32; i++) statuses.push((await upgrade(replica.gatewayUrl, from('203.0.113.77', bearer(`sk-gw-guess${i}${'y'.repeat(36)}`)))).status!);
    expect(statuses.filter((s) => s === 401)).toHaveLength(30);
    expect(statuses.slice(30)).toEqual([429, 429]);
    const blocked = await upgrade(replica.gatewayUrl, from('203.0.113.77', bearer(tenant.secret)));
    expect(blocked).toMatchObject({ status: 429, body: { error: { code: 'too_many_auth_failures' } } });
    expect(Number(blocked.headers!['retry-after'])).toBeGreaterThan(0);
    const other = await upgrade(replica.gatewayUrl, from('203.0.113.78', bearer(tenant.secret)));
    expect(other.ws).toBeDefined();
    other.ws!.close();
  });

  it('bad messages get error events and leave the socket usable; a good one is one metered call', async () => {
    const { ws } = await upgrade(stack.gatewayUrl, bearer(tenant.secret));
    const r = recorder(ws!);
    ws!.send('{not json');
    ws!.send(JSON.stringify({ type: 'session.update' }));
    ws!.send(JSON.stringify([1, 2]));
    ws!.send(Buffer.from([1, 2, 3]), { binary: true });
    ws!.send(create({ previous_response_id: 'resp_from_elsewhere', input: [] }));
    await eventually(() => r.events.length === 5);
    expect(r.events.map((e) => [e.type, e.status, e.error.code])).toEqual([
      ['error', 400, 'invalid_json'],
      ['error', 400, 'unknown_event_type'],
      ['error', 400, 'invalid_message'],
      ['error', 400, 'invalid_message'],
      ['error', 400, 'previous_response_not_found'],
    ]);
    expect(r.events[4].error.param).toBe('previous_response_id');

    fake.script({ text: 'first' }, { text: 'second' });
    ws!.send(create());
    await eventually(() => r.events.some((e) => e.type === 'response.completed'));
    const first = r.events.find((e) => e.type === 'response.completed').response;
    expect(r.events.filter((e) => e.type === 'response.output_text.delta').length).toBeGreaterThan(0);
    // Continued on the same socket: the provider gets the whole conversation.
    ws!.send(create({ previous_response_id: first.id, input: [{ role: 'user', content: 'and again' }] }));
    await eventually(() => r.events.filter((e) => e.type === 'response.completed').length === 2);
    const [, second] = fake.requestsTo('/responses');
    expect(second.body.input.map((i: any) => i.role ?? i.type)).toEqual(['user', 'assistant', 'user']);
    expect(JSON.stringify(second.body.input)).toContain('first');
    expect(second.body.previous_response_id).toBeUndefined();
    expect(second.body.type).toBeUndefined();
    ws!.close();
    expect(await r.closed).toBe(1005);
    await stack.flushLedger();
    const rows = await stack.sql(`SELECT status, streamed FROM usage_records WHERE tenant_id = $1 AND endpoint = 'responses'`, [tenant.tenantId]);
    expect(rows).toEqual([
      { status: 200, streamed: true },
      { status: 200, streamed: true },
    ]);
  });

  it('a budget refusal is an error event in the shape Codex reads (status, headers), with its ledger row', async () => {
    const t = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: ['gpt-4o-mini'] });
    expect((await stack.api('PATCH', `/admin/tenants/${t.tenantId}`, { limits: { dailyBudgetUsd: 0.000001 } })).status).toBe(200);
    const { ws } = await upgrade(stack.gatewayUrl, bearer(t.secret));
    const r = recorder(ws!);
    ws!.send(create());
    await eventually(() => r.events.length === 1);
    const [e] = r.events;
    expect(e).toMatchObject({ type: 'error', status: 429, error: { code: 'insufficient_quota', type: 'usage_limit_reached' } });
    expect(e.error.message).toContain('daily budget');
    expect(e.headers['x-should-retry']).toBe('false');
    expect(e.headers['x-request-id']).toMatch(/^req_/);
    expect(fake.requestsTo('/responses')).toHaveLength(0);
    ws!.close();
    await stack.flushLedger();
    const rows = await stack.sql(`SELECT request_id, status, error_code FROM usage_records WHERE tenant_id = $1`, [t.tenantId]);
    expect(rows).toEqual([{ request_id: e.headers['x-request-id'], status: 429, error_code: 'insufficient_quota' }]);
  });

  it('a message over BODY_LIMIT closes the socket (1009); closing mid-response aborts the upstream call (499 row)', async () => {
    const replica = await startGatewayReplica(stack, { bodyLimit: '2kb' });
    const big = await upgrade(replica.gatewayUrl, bearer(tenant.secret));
    const r = recorder(big.ws!);
    big.ws!.send(create({ input: [{ role: 'user', content: 'x'.repeat(4096) }] }));
    expect(await r.closed).toBe(1009);

    fake.hangNext(1);
    const { ws } = await upgrade(stack.gatewayUrl, bearer(tenant.secret));
    ws!.send(create());
    await eventually(() => fake.openConnections() > 0);
    ws!.terminate();
    await eventually(() => fake.openConnections() === 0);
    await stack.flushLedger();
    const rows = await eventually(async () => {
      await stack.flushLedger();
      const x = await stack.sql(`SELECT status FROM usage_records WHERE tenant_id = $1 AND status = 499`, [tenant.tenantId]);
      return x.length ? x : undefined;
    });
    expect(rows).toEqual([{ status: 499 }]);
  });

  it('a draining gateway refuses upgrades (503) and closes an open socket at its next request (1001: Codex reconnects elsewhere)', async () => {
    const replica = await startGatewayReplica(stack);
    const { ws } = await upgrade(replica.gatewayUrl, bearer(tenant.secret));
    const r = recorder(ws!);
    void replica.app.get(DrainService).drain(0);
    const refused = await upgrade(replica.gatewayUrl, bearer(tenant.secret));
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'gateway_shutting_down' } } });
    ws!.send(create());
    expect(await r.closed).toBe(1001);
    expect(r.events).toEqual([]);
  });
});

describe('Hostile clients on the WebSocket endpoint', () => {
  let fake: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;
  const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });
  const create = (extra: object = {}) => JSON.stringify({ type: 'response.create', model: 'gpt-4o-mini', input: [{ role: 'user', content: 'hi' }], ...extra });

  beforeAll(async () => {
    fake = fakes.openai!;
    tenant = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: ['gpt-4o-mini'] });
  });
  beforeEach(() => fake.reset());

  /** Sends one message and waits for its last event (completed, failed or error). */
  const turn = async (ws: WebSocket, events: any[], message: string): Promise<any> => {
    const from = events.length;
    ws.send(message);
    return eventually(() => events.slice(from).find((e) => ['response.completed', 'response.failed', 'error'].includes(e.type)));
  };

  it('a deeply nested message is refused before it is walked (400 invalid_json, never a stack overflow); odd field types are 400s, never 500s', async () => {
    const { ws } = await upgrade(stack.gatewayUrl, bearer(tenant.secret));
    const r = recorder(ws!);
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const nested = await turn(ws!, r.events, `{"type":"response.create","model":"gpt-4o-mini","input":[{"role":"user","content":"hi"}],"metadata":${deep}}`);
    expect(nested).toMatchObject({ type: 'error', status: 400, error: { code: 'invalid_json' } });
    expect(nested.error.message).not.toContain('call stack');
    expect(fake.requestsTo('/responses')).toHaveLength(0);
    const odd = [
      create({ input: { role: 'user' } }),
      create({ input: 7 }),
      create({ tools: 'all' }),
      create({ client_metadata: ['x'] }),
      create({ client_metadata: { 'x-codex-turn-state': 'a\r\nInjected: 1', 'x-codex-turn-metadata': { a: 1 } } }),
      create({ previous_response_id: { id: 'resp_1' } }),
    ];
    fake.script({ text: 'a' }, { text: 'b' }, { text: 'c' }, { text: 'd' });
    const last: any[] = [];
    for (const m of odd) last.push(await turn(ws!, r.events, m));
    for (const e of last) expect(e.type === 'error' ? e.status : 200).toBeLessThan(500);
    for (const c of fake.requestsTo('/responses')) expect(c.headers.injected).toBeUndefined();
    // Still usable.
    fake.script({ text: 'fine' });
    expect((await turn(ws!, r.events, create())).type).toBe('response.completed');
    ws!.close();
    expect(await r.closed).toBe(1005);
  });

  it('a malformed handshake (method, Sec-WebSocket-Key, version) is an OpenAI-shaped refusal, checked before authentication', async () => {
    const before = sockets.stats.refused;
    const head = (method: string, extra: string) =>
      `${method} /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tenant.secret}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${extra}\r\n`;
    const good = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    const badKey = await fetchRaw(stack.gatewayUrl, head('GET', 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bad\r\n'));
    expect(badKey).toMatch(/^HTTP\/1\.1 400 /);
    expect(badKey).toContain('"code":"invalid_websocket_handshake"');
    const noKey = await fetchRaw(stack.gatewayUrl, head('GET', ''));
    expect(noKey).toMatch(/^HTTP\/1\.1 400 /);
    expect(noKey).toContain('application/json');
    const version = await fetchRaw(stack.gatewayUrl, head('GET', `Sec-WebSocket-Version: 7\r\n${good}`));
    expect(version).toMatch(/^HTTP\/1\.1 400 /);
    expect(version.toLowerCase()).toContain('sec-websocket-version: 13, 8');
    const post = await fetchRaw(stack.gatewayUrl, head('POST', `Sec-WebSocket-Version: 13\r\n${good}Content-Length: 0\r\n`));
    expect(post).toMatch(/^HTTP\/1\.1 405 /);
    expect(post).toContain('"code":"method_not_allowed"');
    expect(sockets.stats.refused - before).toBe(4);
  });

  it('over WS_MAX_CONNECTIONS_PER_KEY parallel upgrades get 426 (never more open); a ping flood mid-response drops the socket, aborts the call and keeps its row (499)', async () => {
    const t = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: ['gpt-4o-mini'] });
    const replica = await startGatewayReplica(stack, { wsMaxConnectionsPerKey: 2 });
    const rs = replica.app.get(ResponsesSocketServer);
    const results = await Promise.all(Array.from({ length: 8 }, () => upgrade(replica.gatewayUrl, bearer(t.secret))));
    expect(results.filter((r) => r.ws)).toHaveLength(2);
    expect(results.filter((r) => r.status === 426)).toHaveLength(6);
    for (const r of results) r.ws?.terminate();
    await eventually(() => rs.stats.open === 0);

    fake.hangNext(1);
    const { ws } = await upgrade(replica.gatewayUrl, bearer(t.secret));
    const r = recorder(ws!);
    ws!.on('error', () => undefined);
    ws!.send(create());
    await eventually(() => fake.openConnections() > 0);
    // ws answers each ping with a pong; past its cap of unanswered ones it drops the socket (memory stays bounded).
    for (let i = 0; i < 1000; i++) ws!.ping();
    expect(await r.closed).toBe(1006);
    await eventually(() => fake.openConnections() === 0);
    const rows = await eventually(async () => {
      await stack.flushLedger();
      const x = await stack.sql(`SELECT status FROM usage_records WHERE tenant_id = $1`, [t.tenantId]);
      return x.length ? x : undefined;
    });
    expect(rows).toEqual([{ status: 499 }]);
  });

  it('a message that starts and then stalls (slower than BODY_MIN_RATE_BYTES_PER_S) drops the socket, as a slow HTTP body is refused; a whole one does not', async () => {
    const { hostname, port } = new URL(stack.gatewayUrl);
    const open = () =>
      new Promise<{ s: ReturnType<typeof connect>; closed: Promise<void> }>((resolve) => {
        const s = connect(Number(port), hostname, () =>
          s.write(
            `GET /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tenant.secret}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
              'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
          ),
        );
        const closed = new Promise<void>((r) => s.once('close', () => r()));
        s.once('data', () => resolve({ s, closed }));
      });
    const before = sockets.stats.open;
    const slow = await open();
    const idle = await open();
    // A text frame announcing 100 kB (masked, as a client's must be), of which 1 kB is sent.
    const header = Buffer.from([0x81, 0xfe, 0x00, 0x00, 1, 2, 3, 4]);
    header.writeUInt16BE(65_000, 2);
    slow.s.write(Buffer.concat([header, Buffer.alloc(1024, 0x20)]));
    await eventually(() => sockets.stats.open === before + 2 && sockets.pendingMessageBytes() > 0);
    const t0 = Date.now() + 1_000;
    sockets.closeStalled(t0);
    sockets.closeStalled(t0 + 11_000);
    await slow.closed;
    await eventually(() => sockets.stats.open === before + 1);
    expect(idle.s.destroyed).toBe(false);
    idle.s.destroy();
  });
});
