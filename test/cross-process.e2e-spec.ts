import { ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { FakeProvider, Stack, TEST_ADMIN_TOKEN, buildGateway, eventually, freePort, startStack } from '@gw/testing';

jest.setTimeout(90_000);

const REFRESH_MS = 200;
/** Generous bound for "within about one poll interval" on a loaded CI machine. */
const PROPAGATION_BOUND_MS = 3_000;


/**
 * The gateway as production runs it: its own process, sharing nothing with the admin API but the database.
 * Every other suite runs gateways in the test's process, where the change feed's in-process event tells
 * them of admin changes at once; here only the `settings.config_version` poll (and the key-miss read) can,
 * so this is what catches a broken poll or a cache that never reloads.
 */
describe('a gateway in another process picks up admin changes through the database alone', () => {
  let stack: Stack;
  let fake: FakeProvider;
  let built: string;
  let child: ChildProcess;
  let url: string;
  let output = '';
  let providerId: string;

  const chat = (secret: string, model: string) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });

  async function newKey(): Promise<{ tenantId: string; keyId: string; secret: string }> {
    const t = await stack.api('POST', '/admin/tenants', { name: `xp-${Math.random().toString(36).slice(2, 8)}` });
    expect(t.status).toBe(201);
    const k = await stack.api('POST', `/admin/tenants/${t.body.id}/keys`, { name: 'k' });
    expect(k.status).toBe(201);
    return { tenantId: t.body.id, keyId: k.body.id, secret: k.body.secret };
  }

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor: 'openai' });
    stack = await startStack({ cacheRefreshMs: REFRESH_MS });
    const p = await stack.api('POST', '/admin/providers', { name: 'openai', kind: 'openai', baseUrl: fake.baseUrl });
    expect(p.status).toBe(201);
    providerId = p.body.id;
    expect((await stack.api('POST', '/admin/routes', { modelPattern: 'gpt-4o-mini', targets: [{ providerId }] })).status).toBe(201);

    // A private build (not dist/, which other runs may be rebuilding).
    built = buildGateway();

    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [join(built, 'apps/gateway/src/main.js')], {
      cwd: built,
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: stack.dbUrl,
        MASTER_KEY: stack.config.masterKey,
        ADMIN_TOKEN: TEST_ADMIN_TOKEN,
        HOST: '127.0.0.1',
        GATEWAY_PORT: String(port),
        LOG_LEVEL: 'warn',
        CACHE_REFRESH_MS: String(REFRESH_MS),
        // rows are written by the shutdown itself (the last test), not by the timer
        LEDGER_FLUSH_MS: '60000',
        SHUTDOWN_GRACE_MS: '5000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    await eventually(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, 20_000, 100, 'the gateway process to be ready').catch((e: Error) => {
      throw new Error(`${e.message}\ngateway output:\n${output}`);
    });
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await stack?.close();
    await fake?.close();
    if (built) rmSync(built, { recursive: true, force: true });
  });

  /** Dumps what the gateway process said when a test fails (its logs are otherwise swallowed). */
  async function withOutput(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      process.stderr.write(`gateway process output:\n${output}\n`);
      throw e;
    }
  }

  it('a key created through the admin API works at once', () =>
    withOutput(async () => {
      const { secret } = await newKey();
      const res = await chat(secret, 'gpt-4o-mini');
      expect(res.status).toBe(200);
    }));

  it(`a revoked key is refused within ${PROPAGATION_BOUND_MS} ms`, () =>
    withOutput(async () => {
      const { tenantId, keyId, secret } = await newKey();
      // In the other process's snapshot (not just its miss read): wait for a reload that has it.
      expect((await chat(secret, 'gpt-4o-mini')).status).toBe(200);
      await new Promise((r) => setTimeout(r, REFRESH_MS * 3));
      expect((await chat(secret, 'gpt-4o-mini')).status).toBe(200);

      const t0 = Date.now();
      expect((await stack.api('POST', `/admin/tenants/${tenantId}/keys/${keyId}/revoke`)).status).toBe(200);
      await eventually(async () => (await chat(secret, 'gpt-4o-mini')).status === 401, PROPAGATION_BOUND_MS, 25, 'the revoked key to be refused by the other process');
      expect(Date.now() - t0).toBeLessThan(PROPAGATION_BOUND_MS + 500);
      // and it stays refused
      expect((await chat(secret, 'gpt-4o-mini')).status).toBe(401);
    }));

  it(`a route added through the admin API is served within ${PROPAGATION_BOUND_MS} ms`, () =>
    withOutput(async () => {
      const { secret } = await newKey();
      expect((await chat(secret, 'late-model')).status).toBe(404);
      expect((await stack.api('POST', '/admin/routes', { modelPattern: 'late-model', targets: [{ providerId, model: 'gpt-4o-mini' }] })).status).toBe(201);
      await eventually(async () => (await chat(secret, 'late-model')).status === 200, PROPAGATION_BOUND_MS, 25, 'the new route to be served by the other process');
    }));

  it(`a disabled tenant is refused within ${PROPAGATION_BOUND_MS} ms`, () =>
    withOutput(async () => {
      const { tenantId, secret } = await newKey();
      expect((await chat(secret, 'gpt-4o-mini')).status).toBe(200);
      expect((await stack.api('PATCH', `/admin/tenants/${tenantId}`, { enabled: false })).status).toBe(200);
      await eventually(async () => (await chat(secret, 'gpt-4o-mini')).status === 401, PROPAGATION_BOUND_MS, 25, 'the disabled tenant\'s key to be refused by the other process');
    }));

  // Last: it stops the process.
  it('repeated signals during the drain do not cut it short: the stream in flight ends normally, the ledger is flushed, exit 0', () =>
    withOutput(async () => {
      const { secret } = await newKey();
      fake.options.chunkDelayMs = 150;
      fake.options.streamChunks = 12;
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true }),
      });
      expect(res.status).toBe(200);
      const id = res.headers.get('x-request-id');
      const reader = res.body!.getReader();
      let text = '';
      text += new TextDecoder().decode((await reader.read()).value);
      // Ctrl-C as a terminal + npm deliver it (twice at once), then an impatient second one, then a SIGTERM
      child.kill('SIGINT');
      child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 1100));
      child.kill('SIGINT');
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      expect(text).toContain('data: [DONE]');
      expect(text).not.toContain('"error"');
      expect(await exited).toBe(0);
      expect(output).toContain('already draining');
      const rows = await stack.sql('SELECT status, streamed FROM usage_records WHERE request_id = $1', [id]);
      expect(rows).toEqual([{ status: 200, streamed: true }]);
    }));
});
