import * as net from 'node:net';
import type { Server } from 'node:http';
import { FakeProvider, GatewayReplica, Stack, TEST_ADMIN_TOKEN, eventually, seedTenant, startGatewayReplica, startStack } from '@gw/testing';

jest.setTimeout(60_000);

/**
 * Issue 13.3: slow clients are bounded. Real sockets over loopback (node:net), against real servers:
 * headers within a time and size limit, bodies at a minimum rate, a per-address connection cap, and
 * 2,000 slow connections that do not slow anybody else down.
 *
 * Linux routes all of 127.0.0.0/8 to loopback, so `localAddress: 127.0.0.N` gives a client its own address.
 */

/** The main stack: long enough windows for the 2,000-connection measurement to run inside them. */
const MAIN_WINDOW_MS = 8_000;
/** The replica: short windows for the single-connection tests. */
const R = { headersTimeoutMs: 1_000, bodyRateWindowMs: 1_000, bodyMinBytesPerSecond: 1_048_576, maxConnectionsPerAddress: 8, keepAliveTimeoutMs: 1_000 };
/** How late a close may come after its deadline: the sweep (≤ 1 s; 200 ms on the replica) plus scheduling on 2 busy cores. */
const LATE_MS = 1_500;
const TRUSTED = '127.0.0.79';

const measured: Record<string, number | string> = {};
afterAll(() => {
  console.log(`slow-clients.e2e-spec measured: ${JSON.stringify(measured)}`);
});

interface Conn {
  socket: net.Socket;
  /** When this connection was established (performance.now()). */
  openedAt: number;
  /** When its deadline started (set by the test: last header byte, first byte…). */
  clockAt: number;
  closedAt?: number;
  received: Buffer[];
  closed: Promise<void>;
}

function connect(port: number, localAddress?: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const conn: Conn = { socket, openedAt: 0, clockAt: 0, received: [], closed: undefined as unknown as Promise<void> };
    conn.closed = new Promise((done) =>
      socket.on('close', () => {
        conn.closedAt = performance.now();
        done();
      }),
    );
    socket.on('data', (d: Buffer) => conn.received.push(d));
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      conn.openedAt = conn.clockAt = performance.now();
      resolve(conn);
    });
    socket.once('error', reject);
  });
}

/** Status and parsed JSON body of the (first) response a raw connection received. */
function responseOf(c: Conn): { status: number; body: any; head: string } {
  const text = Buffer.concat(c.received).toString('utf8');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const sep = text.indexOf('\r\n\r\n');
  const head = sep >= 0 ? text.slice(0, sep) : text;
  let raw = text.slice(sep + 4);
  if (/^transfer-encoding: chunked/im.test(head)) {
    let out = '';
    for (let i = 0; ;) {
      const eol = raw.indexOf('\r\n', i);
      const n = parseInt(raw.slice(i, eol), 16);
      if (!(n > 0)) break;
      out += raw.slice(eol + 2, eol + 2 + n);
      i = eol + 2 + n + 2;
    }
    raw = out;
  }
  let body: any;
  try {
    body = JSON.parse(raw);
  } catch {
    body = undefined;
  }
  return { status, body, head };
}

function heldMs(c: Conn): number {
  return (c.closedAt ?? Infinity) - c.clockAt;
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

function openConnections(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function chatBody(content = 'hi'): string {
  return JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
}

function expectOpenAIError(body: any, code: string): void {
  expect(Object.keys(body ?? {})).toEqual(['error']);
  expect(body.error).toEqual({ message: expect.any(String), type: expect.any(String), param: null, code });
}

describe('slow clients are bounded', () => {
  let fake: FakeProvider;
  let stack: Stack;
  let replica: GatewayReplica;
  let secret: string;

  beforeAll(async () => {
    const t0 = performance.now();
    fake = await FakeProvider.start({ flavor: 'openai' });
    stack = await startStack({ headersTimeoutMs: MAIN_WINDOW_MS, bodyRateWindowMs: MAIN_WINDOW_MS });
    ({ secret } = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl }, patterns: ['gpt-4o-mini'] }));
    replica = await startGatewayReplica(stack, { ...R, trustedProxies: [TRUSTED] });
    measured.setupMs = Math.round(performance.now() - t0);
  });

  afterAll(async () => {
    await stack?.close();
    await fake?.close();
  });

  const chatHead = (length: number | 'chunked', key = secret) =>
    'POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n' +
    `Authorization: Bearer ${key}\r\n` +
    (length === 'chunked' ? 'Transfer-Encoding: chunked\r\n\r\n' : `Content-Length: ${length}\r\n\r\n`);

  it('headers must arrive within HEADERS_TIMEOUT_MS: 408 request_timeout and closed, however they trickle; idle keep-alive closed after KEEP_ALIVE_TIMEOUT_MS', async () => {
    const port = portOf(replica.gatewayUrl);
    const [silent, partial, trickle, idle] = await Promise.all([connect(port), connect(port), connect(port), connect(port)]);
    partial.socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n');
    trickle.socket.write('GET /healthz HTTP/1.1\r\nX-Slow: ');
    // One header byte every 100 ms: a busy socket, but its headers never finish.
    const timer = setInterval(() => !trickle.socket.destroyed && trickle.socket.write('a'), 100);
    // A complete request, then nothing: the keep-alive timeout (Node adds 1 s to what it advertises).
    idle.socket.write('GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n');
    await eventually(() => responseOf(idle).status === 200, 2_000);
    idle.clockAt = performance.now();
    expect(responseOf(idle).head.toLowerCase()).toContain(`keep-alive: timeout=${R.keepAliveTimeoutMs / 1_000}`);
    await Promise.all([silent.closed, partial.closed, trickle.closed, idle.closed]);
    clearInterval(timer);
    expect(heldMs(idle)).toBeGreaterThanOrEqual(R.keepAliveTimeoutMs + 1_000 - 100);
    expect(heldMs(idle)).toBeLessThan(R.keepAliveTimeoutMs + 1_000 + LATE_MS);
    measured.keepAliveIdleHeldMs = Math.round(heldMs(idle));
    for (const c of [silent, partial, trickle]) {
      expect(heldMs(c)).toBeGreaterThanOrEqual(R.headersTimeoutMs - 50);
      expect(heldMs(c)).toBeLessThan(R.headersTimeoutMs + LATE_MS);
      const r = responseOf(c);
      expect(r.status).toBe(408);
      expect(r.head.toLowerCase()).toContain('connection: close');
      expectOpenAIError(r.body, 'request_timeout');
    }
    measured.headerTimeoutHeldMs = Math.round(heldMs(trickle));
  });

  it('request line and headers above MAX_HEADER_BYTES (16 KiB): 431 headers_too_large on both apps; 12 KiB pass', async () => {
    for (const url of [stack.gatewayUrl, stack.adminUrl]) {
      const big = await connect(portOf(url));
      big.socket.write(`GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Pad: ${'p'.repeat(17 * 1024)}\r\n\r\n`);
      await big.closed;
      const r = responseOf(big);
      expect(r.status).toBe(431);
      expectOpenAIError(r.body, 'headers_too_large');

      const ok = await connect(portOf(url));
      ok.socket.write(`GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nX-Pad: ${'p'.repeat(12 * 1024)}\r\n\r\n`);
      await ok.closed;
      expect(responseOf(ok).status).toBe(200);
    }
  });

  it('a body trickling below BODY_MIN_RATE_BYTES_PER_S: 408 request_timeout after one window, connection closed', async () => {
    const c = await connect(portOf(replica.gatewayUrl));
    c.socket.write(chatHead(10_000));
    c.clockAt = performance.now();
    // 10 bytes every 100 ms: 100 B/s, a trickle.
    const timer = setInterval(() => !c.socket.destroyed && c.socket.write('          '), 100);
    await c.closed;
    clearInterval(timer);
    const r = responseOf(c);
    expect(r.status).toBe(408);
    expect(r.head.toLowerCase()).toContain('connection: close');
    expect(r.head.toLowerCase()).toMatch(/x-request-id: req_/);
    expectOpenAIError(r.body, 'request_timeout');
    expect(heldMs(c)).toBeGreaterThanOrEqual(R.bodyRateWindowMs - 50);
    expect(heldMs(c)).toBeLessThan(R.bodyRateWindowMs + LATE_MS);
    measured.trickleHeldMsReplicaWindow1s = Math.round(heldMs(c));
  });

  /** Sends `total` bytes of a valid chat request at about `bytesPerSecond`, in 64 KiB pieces; resolves with the raw connection once it closes. */
  async function paced(total: number, bytesPerSecond: number, chunked = false): Promise<{ conn: Conn; ms: number }> {
    const prefix = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"';
    const suffix = '"}]}';
    const body = Buffer.alloc(total, 'x');
    body.write(prefix, 0);
    body.write(suffix, total - suffix.length);
    const c = await connect(portOf(replica.gatewayUrl));
    c.socket.write(chatHead(chunked ? 'chunked' : total).replace('HTTP/1.1\r\n', 'HTTP/1.1\r\nConnection: close\r\n'));
    const t0 = performance.now();
    const piece = 64 * 1024;
    for (let sent = 0; sent < total && !c.socket.destroyed;) {
      const n = Math.min(piece, total - sent);
      const data = body.subarray(sent, sent + n);
      c.socket.write(chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), data, Buffer.from('\r\n')]) : data);
      sent += n;
      const due = t0 + (sent / bytesPerSecond) * 1_000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
    if (chunked && !c.socket.destroyed) c.socket.write('0\r\n\r\n');
    const ms = performance.now() - t0;
    await c.closed;
    return { conn: c, ms };
  }

  it('a 10 MB body at 4 MB/s (4× the minimum, over 2+ windows) is served; the same body at half the minimum rate is refused', async () => {
    fake.reset();
    const fast = await paced(10 * 1024 * 1024, 4 * 1024 * 1024);
    expect(fast.ms).toBeGreaterThan(2 * R.bodyRateWindowMs);
    const r = responseOf(fast.conn);
    expect(r.status).toBe(200);
    expect(r.body.choices[0].message.content).toEqual(expect.any(String));
    expect(fake.requestsTo('/chat/completions').length).toBe(1);
    measured.largeBodyMBps = Number(((10 / fast.ms) * 1_000).toFixed(2));

    const slow = await paced(4 * 1024 * 1024, 512 * 1024, true);
    const s = responseOf(slow.conn);
    expect(s.status).toBe(408);
    expectOpenAIError(s.body, 'request_timeout');
    expect(fake.requestsTo('/chat/completions').length).toBe(1);
  });

  it('MAX_CONNECTIONS_PER_ADDRESS: the (cap+1)th connection from one address gets 429 too_many_connections; others, and trusted proxies, are not affected', async () => {
    const port = portOf(replica.gatewayUrl);
    const held = await Promise.all(Array.from({ length: R.maxConnectionsPerAddress }, () => connect(port, '127.0.0.77')));
    const extra = await connect(port, '127.0.0.77');
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n');
    await extra.closed;
    const r = responseOf(extra);
    expect(r.status).toBe(429);
    expect(r.head.toLowerCase()).toContain('retry-after: 1');
    expectOpenAIError(r.body, 'too_many_connections');

    // Another address is served at once.
    const other = await connect(port, '127.0.0.78');
    other.socket.write('GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    await other.closed;
    expect(responseOf(other).status).toBe(200);

    // A place freed is a place available.
    held[0].socket.destroy();
    await held[0].closed;
    await sleep(50);
    const again = await connect(port, '127.0.0.77');
    again.socket.write('GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    await again.closed;
    expect(responseOf(again).status).toBe(200);

    // A trusted proxy carries everybody's connections: not capped.
    const proxied = await Promise.all(Array.from({ length: R.maxConnectionsPerAddress + 4 }, () => connect(port, TRUSTED)));
    for (const p of proxied) p.socket.write('GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    await Promise.all(proxied.map((p) => p.closed));
    expect(proxied.map((p) => responseOf(p).status)).toEqual(proxied.map(() => 200));

    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
  });

  it('2,000 slow connections (trickled headers and bodies, both apps) do not delay other clients: p99 within 2× of the quiet run; all closed in their window', async () => {
    const gwPort = portOf(stack.gatewayUrl);
    const adminPort = portOf(stack.adminUrl);

    /** `n` small chat requests, `concurrency` at a time, sorted latencies; stops early at `until` (performance.now()). */
    async function normalRun(n: number, concurrency: number, until = Infinity): Promise<number[]> {
      const lat: number[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next++ < n && performance.now() < until) {
            const t = performance.now();
            const res = await fetch(`${stack.baseURL}/chat/completions`, {
              method: 'POST',
              headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
              body: chatBody(),
            });
            await res.text();
            lat.push(performance.now() - t);
            expect(res.status).toBe(200);
          }
        }),
      );
      return lat.sort((a, b) => a - b);
    }
    const pct = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

    await normalRun(150, 4); // warm-up: JIT, pools, key cache
    // The quiet run is measured before and after the slow connections and pooled, so that a burst of
    // someone else's load on the shared machine during one of them does not set the bar alone.
    const quietBefore = await normalRun(300, 4);

    // 2,000 slow connections from 16 addresses (125 each, under the default cap of 256).
    const kinds: { port: number; head: string; body: boolean; n: number }[] = [
      { port: gwPort, head: chatHead(100_000), body: true, n: 900 },
      { port: gwPort, head: 'POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nX-Slow: ', body: false, n: 900 },
      {
        port: adminPort,
        head: `POST /admin/tenants HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${TEST_ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
        body: true,
        n: 100,
      },
      { port: adminPort, head: 'GET /admin/tenants HTTP/1.1\r\nHost: gw\r\nX-Slow: ', body: false, n: 100 },
    ];
    const slow: (Conn & { body: boolean })[] = [];
    const plan = kinds.flatMap((k) => Array.from({ length: k.n }, () => k));
    const tOpen = performance.now();
    // In batches with a breath between them: client and servers share one event loop here, and a burst of
    // connects overflows the listen queue (SYN retried after 1 s) before the servers get to accept.
    for (let i = 0; i < plan.length; i += 200) {
      if (i) await sleep(50);
      const batch = await Promise.all(
        plan.slice(i, i + 200).map(async (k, j) => {
          const c = await connect(k.port, `127.0.0.${2 + ((i + j) % 16)}`);
          c.socket.write(k.head);
          c.clockAt = performance.now();
          return Object.assign(c, { body: k.body });
        }),
      );
      slow.push(...batch);
    }
    measured.openSlowMs = Math.round(performance.now() - tOpen);
    // One byte every 4 s on every slow connection, spread out (a fortieth of them each 100 ms): busy, never
    // done. Spread, because this process also plays the attacker: 2,000 writes in one burst would block
    // the event loop the servers share with it, which a remote attacker's writes would not.
    let tick = 0;
    let loaded: number[] | undefined;
    const trickle = setInterval(() => {
      tick++;
      for (let i = tick % 40; i < slow.length; i += 40) if (!slow[i].socket.destroyed) slow[i].socket.write(slow[i].body ? ' ' : 'a');
    }, 100);
    try {
      await eventually(
        async () => (await openConnections(stack.gateway.getHttpServer())) >= 1_800 && (await openConnections(stack.admin.getHttpServer())) >= 200,
        5_000,
      );

      // Time-boxed to end before the first slow connection's deadline: on a slow day, fewer samples rather
      // than a measurement the slow connections were not all there for.
      const firstDeadline = Math.min(...slow.map((c) => c.clockAt)) + MAIN_WINDOW_MS;
      loaded = await normalRun(600, 4, firstDeadline - 1_000);
      const stillOpen = slow.filter((c) => c.closedAt === undefined).length;
      expect(stillOpen).toBe(2_000);
      expect(loaded.length).toBeGreaterThanOrEqual(300);
      measured.loadedSamples = loaded.length;

      measured.loadedP50Ms = +pct(loaded, 0.5).toFixed(2);
      measured.loadedP99Ms = +pct(loaded, 0.99).toFixed(2);

      // Every slow connection is answered 408 and closed within its window (checked below; one never closed holds ∞).
      let giveUp: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(slow.map((c) => c.closed)), new Promise((r) => (giveUp = setTimeout(r, MAIN_WINDOW_MS + LATE_MS + 3_000)))]);
      clearTimeout(giveUp);
    } finally {
      clearInterval(trickle);
      for (const c of slow) c.socket.destroy();
    }
    // The servers hold nothing afterwards.
    await eventually(
      async () => (await openConnections(stack.gateway.getHttpServer())) < 10 && (await openConnections(stack.admin.getHttpServer())) < 10,
      5_000,
    );
    const quietAfter = await normalRun(300, 4);
    const quiet = [...quietBefore, ...quietAfter].sort((a, b) => a - b);
    Object.assign(measured, {
      quietP50Ms: +pct(quiet, 0.5).toFixed(2),
      quietP99Ms: +pct(quiet, 0.99).toFixed(2),
      quietBeforeP99Ms: +pct(quietBefore, 0.99).toFixed(2),
      quietAfterP99Ms: +pct(quietAfter, 0.99).toFixed(2),
    });
    // 2× the quiet p99, plus 10 ms for scheduling noise on two shared cores.
    expect(pct(loaded, 0.99)).toBeLessThanOrEqual(2 * pct(quiet, 0.99) + 10);

    const held = slow.map(heldMs).sort((a, b) => a - b);
    measured.slowHeldMinMs = Math.round(held[0]);
    measured.slowHeldMaxMs = Math.round(held[held.length - 1]);
    expect(held[0]).toBeGreaterThanOrEqual(MAIN_WINDOW_MS - 50);
    // 2,000 deadlines falling within the same few seconds on two shared cores: a second more of slack.
    expect(held[held.length - 1]).toBeLessThan(MAIN_WINDOW_MS + LATE_MS + 1_000);
    const statuses = new Map<string, number>();
    for (const c of slow) {
      const r = responseOf(c);
      const key = `${c.body ? 'body' : 'headers'}:${r.status}:${r.body?.error?.code}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 'body:408:request_timeout': 1_000, 'headers:408:request_timeout': 1_000 });
  });
});
