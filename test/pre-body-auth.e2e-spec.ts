import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Server, request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Socket, connect } from 'node:net';
import { ApiKeyRepository } from '@gw/tenancy';
import { DataSource } from 'typeorm';
import { FakeProvider, Stack, eventually, seedTenant, startGatewayReplica, startStack } from '@gw/testing';

jest.setTimeout(90_000);

const BIG = 49 * 1024 * 1024;
const CHUNK = Buffer.alloc(1024 * 1024, 0x61);
/** The bound: refused this soon after the end of the headers, whatever the body. */
const REFUSE_MS = 5;

interface RawResult {
  status: number;
  head: string;
  /** From the end of the request headers to the first byte of the answer. */
  answerMs: number;
  /** From the end of the request headers to the connection's close (by the server). */
  closedMs: number;
  /** Body bytes the client handed to its socket before it closed (most never reached the server). */
  bodyBytesWritten: number;
}

/** A random bearer shaped exactly like a real virtual key. */
const fakeKey = () => `sk-gw-${randomBytes(24).toString('base64url')}`;

/**
 * One raw HTTP/1.1 POST over loopback: the head, then the body as `mode` says — `flood`: 49 MB as fast as the
 * socket takes it; `slow`: one byte every 100 ms (a body that would take hours).
 */
function rawPost(port: number, secret: string, mode: 'flood' | 'slow', localAddress: string): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const sock: Socket = connect({ port, host: '127.0.0.1', localAddress });
    let t0 = 0;
    let answerAt = 0;
    let head = '';
    let written = 0;
    let closed = false;
    let trickle: NodeJS.Timeout | undefined;
    sock.on('connect', () => {
      sock.setNoDelay(true);
      const headers = [
        'POST /v1/chat/completions HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        `Authorization: Bearer ${secret}`,
        'Content-Type: application/json',
        `Content-Length: ${BIG}`,
        '',
        '',
      ].join('\r\n');
      sock.write(headers, () => undefined);
      t0 = performance.now();
      if (mode === 'flood') {
        const pump = () => {
          while (!closed && written < BIG) {
            written += CHUNK.length;
            if (!sock.write(CHUNK)) return void sock.once('drain', pump);
          }
        };
        pump();
      } else {
        trickle = setInterval(() => {
          if (closed) return;
          written += 1;
          sock.write('{');
        }, 100);
      }
    });
    sock.on('data', (d) => {
      if (!answerAt) answerAt = performance.now();
      head += d.toString('latin1');
    });
    sock.on('error', () => undefined); // EPIPE / ECONNRESET once the server closes: expected
    sock.on('close', () => {
      closed = true;
      clearInterval(trickle);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, answerMs: answerAt - t0, closedMs: performance.now() - t0, bodyBytesWritten: written });
    });
    setTimeout(() => {
      if (!closed) {
        sock.destroy();
        reject(new Error(`connection still open after 20 s (answer: ${JSON.stringify(head.slice(0, 200))})`));
      }
    }, 20_000).unref();
  });
}

/** A small POST with node:http from a given loopback source address. */
function httpPost(localAddress: string, key: string, body: string, port = 0): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: port || currentPort,
        localAddress,
        method: 'POST',
        path: '/v1/chat/completions',
        agent: false,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
let currentPort = 0;

const FLOOD_ADDRESS = '127.0.0.2';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe('no body is read for a caller who is not a tenant', () => {
  let stack: Stack;
  let fake: FakeProvider;
  let port: number;
  let secret: string;
  /**
   * Bytes the gateway read from each closed connection, by the order it closed (not by the client's port: a port
   * the OS hands out again, from another source address, would hide the new connection behind an old entry).
   */
  const readBy = new Map<number, number>();
  let closed = 0;

  const chat = (key: string) =>
    fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai' });
    stack = await startStack();
    port = currentPort = Number(new URL(stack.gatewayUrl).port);
    ({ secret } = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl }, patterns: ['gpt-4o-mini'] }));
    (stack.gateway.getHttpServer() as Server).on('connection', (s: Socket) => {
      s.once('close', () => readBy.set(++closed, s.bytesRead));
    });
  });

  afterAll(async () => {
    await stack?.close();
    await fake?.close();
  });

  /**
   * The median answer time of rounds of `n` refusals, up to `rounds` rounds until one is under REFUSE_MS: two
   * cores shared with other jobs can stall any single round, a refusal that really costs more never passes.
   * Every attempt must still be refused and closed, answered within a second.
   */
  async function refusalRounds(key: () => string, mode: 'flood' | 'slow', label: string, n = 7, rounds = 3) {
    let best = Infinity;
    let all: (RawResult & { serverRead: number })[] = [];
    for (let i = 0; i < rounds && best >= REFUSE_MS; i++) {
      const rs = await refusals(key, mode, n);
      all = all.concat(rs);
      const m = median(rs.map((r) => r.answerMs));
      best = Math.min(best, m);
      process.stdout.write(
        `${label}: answer after ${rs.map((r) => r.answerMs.toFixed(2)).join(', ')} ms (median ${m.toFixed(2)}); server read ${rs.map((r) => r.serverRead).join(', ')} bytes; closed after ${rs.map((r) => r.closedMs.toFixed(1)).join(', ')} ms\n`,
      );
    }
    for (const r of all) expect(r.answerMs).toBeLessThan(1000);
    expect(best).toBeLessThan(REFUSE_MS);
    return all;
  }

  /** Runs `n` raw requests, checks each was refused with `status` and the connection closed, returns the timings. */
  let rounds = 0;
  async function refusals(key: () => string, mode: 'flood' | 'slow', n: number, status = 401) {
    const results: (RawResult & { serverRead: number })[] = [];
    // Each round from an address of its own: these refusals count as failed authentications (30 a minute
    // block an address), and must block neither each other nor the other tests' clients (127.0.0.1).
    const from = `127.0.2.${++rounds}`;
    for (let i = 0; i < n; i++) {
      const before = new Set(readBy.keys());
      const r = await rawPost(port, key(), mode, from);
      const serverRead = await eventually(
        () => [...readBy.keys()].find((p) => !before.has(p)) !== undefined && Math.max(...[...readBy].filter(([p]) => !before.has(p)).map(([, b]) => b)),
        2000,
        10,
        'the server side of the connection to close',
      );
      expect(r.status).toBe(status);
      expect(r.head.toLowerCase()).toContain('connection: close');
      results.push({ ...r, serverRead });
    }
    return results;
  }

  it(`an unknown key sending a 49 MB body is refused in < ${REFUSE_MS} ms, and the gateway reads almost none of it`, async () => {
    const rs = await refusalRounds(fakeKey, 'flood', 'unknown key, 49 MB body');
    for (const r of rs) {
      // The head plus what the first socket reads happened to hold: a few 64 KB reads at most, never the body.
      expect(r.serverRead).toBeLessThan(4 * 1024 * 1024);
      expect(r.closedMs).toBeLessThan(1000);
    }
    // The body is OpenAI-shaped.
    expect(rs[0].head).toContain('"code":"invalid_api_key"');
  });

  it(`an unknown key trickling its body is refused in < ${REFUSE_MS} ms and the connection is not held`, async () => {
    const rs = await refusalRounds(fakeKey, 'slow', 'unknown key, slow body', 5);
    for (const r of rs) expect(r.closedMs).toBeLessThan(1000);
  });

  it('a revoked key is refused the same way (before its body, no database read)', async () => {
    const { tenantId, keyId, secret: revoked } = await seedTenant(stack, { provider: { kind: 'openai', baseUrl: fake.baseUrl } });
    expect((await chat(revoked)).status).toBe(200);
    expect((await stack.api('POST', `/admin/tenants/${tenantId}/keys/${keyId}/revoke`)).status).toBe(200);
    expect((await chat(revoked)).status).toBe(401);
    // Let the reloads the revocation set off (this process's, then the feed's poll) finish before timing.
    await new Promise((r) => setTimeout(r, 500));
    const rs = await refusalRounds(() => revoked, 'flood', 'revoked key, 49 MB body', 5);
    for (const r of rs) expect(r.serverRead).toBeLessThan(4 * 1024 * 1024);
  });

  it('unknown keys cost no database read: 300 of them, and the gateway queried only on its own schedule', async () => {
    const ds = stack.gateway.get(DataSource);
    const runners = jest.spyOn(ds, 'createQueryRunner');
    const keysRead = jest.spyOn(stack.gateway.get(ApiKeyRepository), 'forEachActive');
    try {
      const t0 = Date.now();
      // From 15 loopback addresses, 20 each: under the failed-auth block (30 a minute), so every one is looked up.
      for (let i = 0; i < 300; i++) {
        const r = await httpPost(`127.0.1.${1 + (i % 15)}`, fakeKey(), '{"model":"gpt-4o-mini","messages":[]}');
        expect(r.status).toBe(401);
        expect(r.body).toContain('invalid_api_key');
      }
      const ms = Date.now() - t0;
      // What ran meanwhile is the change feed's poll (every 100 ms here) and its reloads, not one read per request.
      process.stdout.write(`300 unknown keys in ${ms} ms: ${runners.mock.calls.length} query runners, ${keysRead.mock.calls.length} key-set loads\n`);
      expect(keysRead).not.toHaveBeenCalled();
      expect(runners.mock.calls.length).toBeLessThan(10 + (ms / 100) * 2);
      expect(runners.mock.calls.length).toBeLessThan(100);
    } finally {
      runners.mockRestore();
      keysRead.mockRestore();
    }
  });

  it('refusals before the body still count as failed authentications: the 31st guess from an address is blocked', async () => {
    const from = '127.0.3.1';
    for (let i = 0; i < 30; i++) expect((await httpPost(from, fakeKey(), '{}')).status).toBe(401);
    const blocked = await httpPost(from, secret, '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}');
    expect(blocked.status).toBe(429);
    expect(blocked.body).toContain('too_many_auth_failures');
    // other addresses are not affected
    expect((await chat(secret)).status).toBe(200);
  });

  it('until its key set is loaded a gateway is not ready and answers 503 keys_not_loaded, never 401 to a real key', async () => {
    // The first load of a new replica fails (as with the database unreachable at start), then succeeds on retry.
    const load = jest.spyOn(ApiKeyRepository.prototype, 'forEachActive').mockRejectedValue(new Error('connection refused (injected)'));
    let replica;
    try {
      replica = await startGatewayReplica(stack);
      expect((await fetch(`${replica.gatewayUrl}/readyz`)).status).toBe(503);
      const r = await fetch(`${replica.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
      expect(((await r.json()) as any).error).toMatchObject({ code: 'keys_not_loaded', type: 'server_error' });
    } finally {
      load.mockRestore();
    }
    // the retry (1 s backoff) loads it: ready, and the key works
    await eventually(async () => (await fetch(`${replica.gatewayUrl}/readyz`)).status === 200, 5000, 100, 'the replica to become ready');
    const ok = await fetch(`${replica.baseURL}/models`, { headers: { authorization: `Bearer ${secret}` } });
    expect(ok.status).toBe(200);
    await replica.close();
  });

  it('Expect: 100-continue (curl, bodies over 1 MB): a refused client is answered instead of invited to upload', async () => {
    /** Sends the head with Expect: 100-continue, waits for the first answer; sends `body` only after a 100. */
    const expectContinue = (key: string, body: string) =>
      new Promise<string>((resolve, reject) => {
        const sock = connect({ port, host: '127.0.0.1', localAddress: '127.0.3.2' });
        let got = '';
        sock.on('connect', () =>
          sock.write(
            `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
          ),
        );
        sock.on('data', (d) => {
          const first = !got;
          got += d.toString();
          if (first && got.startsWith('HTTP/1.1 100')) sock.write(body);
        });
        sock.on('error', reject);
        sock.on('close', () => resolve(got));
      });
    const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const refused = await expectContinue(fakeKey(), body);
    expect(refused).toMatch(/^HTTP\/1\.1 401 /);
    expect(refused).not.toContain('100 Continue');
    const served = await expectContinue(secret, body);
    expect(served).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(served).toContain('chat.completion');
  });

  it('a valid key still has its body read and served', async () => {
    const ok = await chat(secret);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as any).choices[0].message.content).toBeTruthy();
    // A key-shaped credential of a real key: its broken body is parsed (400 invalid_json), as before.
    const broken = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: '{"model":',
    });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as any).error.code).toBe('invalid_json');
  });

  it('other clients are not slowed down by a flood of unknown keys sending 49 MB bodies', async () => {
    const sample = async (n: number) => {
      const lat: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const r = await chat(secret);
        expect(r.status).toBe(200);
        await r.arrayBuffer();
        lat.push(performance.now() - t0);
      }
      return median(lat);
    };
    await sample(10); // warm-up
    const quiet = await sample(40);
    // The flood comes from another process (4 connections at a time, each a new unknown key and 49 MB),
    // so its client-side work does not run on the event loop measured here.
    const flood = spawn(
      process.execPath,
      [
        '-e',
        `
        const net = require('node:net'), crypto = require('node:crypto');
        const chunk = Buffer.alloc(1 << 20, 97);
        // Counts finished attempts: a client still writing when the server closes often gets a reset instead of
        // the 401 (its unread data makes the server's kernel send RST), so the answer itself may be lost.
        let refused = 0;
        function one() {
          const s = net.connect({ port: ${port}, host: '127.0.0.1', localAddress: '${FLOOD_ADDRESS}' }, () => {
            s.write('POST /v1/chat/completions HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer sk-gw-' + crypto.randomBytes(24).toString('base64url') + '\\r\\nContent-Type: application/json\\r\\nContent-Length: ${BIG}\\r\\n\\r\\n');
            let sent = 0;
            const pump = () => { while (sent < ${BIG}) { sent += chunk.length; if (!s.write(chunk)) return void s.once('drain', pump); } };
            pump();
          });
          s.on('error', () => {});
          s.on('close', () => { refused++; setImmediate(one); });
        }
        for (let i = 0; i < 4; i++) one();
        setInterval(() => process.stdout.write(refused + '\\n'), 500);
        `,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let refusedByFlood = 0;
    flood.stdout.on('data', (d: Buffer) => (refusedByFlood = Number(d.toString().trim().split('\n').pop())));
    try {
      await eventually(() => refusedByFlood > 20, 10_000, 50, 'the flood to be under way');
      // The gateway runs in this process: its event loop is what a parsed 49 MB body would block (270–480 ms each).
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      const during = await sample(40);
      loop.disable();
      const loopP99 = loop.percentile(99) / 1e6;
      process.stdout.write(
        `other client's chat p50: quiet ${quiet.toFixed(2)} ms, during the flood ${during.toFixed(2)} ms (${refusedByFlood} flood requests done so far); event-loop delay p99 ${loopP99.toFixed(1)} ms\n`,
      );
      // Loose, for two shared cores where the flooding process competes for CPU too: within 3× (or 30 ms) of quiet.
      // Before this change it went from 20 to 57 ms, and each parsed body blocked the loop for 270–480 ms (4 at a
      // time: the loop would be blocked nearly all the time, and this p50 in the hundreds of ms).
      expect(during).toBeLessThan(Math.max(quiet * 3, quiet + 30));
      expect(loopP99).toBeLessThan(100);
      expect(refusedByFlood).toBeGreaterThan(20);
    } finally {
      flood.kill('SIGKILL');
    }
  });
});
