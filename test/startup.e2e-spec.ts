import OpenAI from 'openai';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startEmbeddedPostgres } from '@gw/db';
import { FakeProvider, createTestDatabase } from '@gw/testing';

/**
 * The real entry point as a user runs it (`npm start` = build, then dist/apps/all-in-one): config
 * validation, the generated admin token, restarts, SIGTERM, and providers from environment variables.
 */
jest.setTimeout(60_000);

const ROOT = join(__dirname, '..');
const MAIN = join(ROOT, 'dist', 'apps', 'all-in-one', 'src', 'main.js');
const BANNER = 'Generated root admin token';

interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<Proc>();
const tempDirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gw-startup-'));
  tempDirs.push(d);
  return d;
}

/** A port that was free a moment ago (the app needs concrete ports: it prints and serves them). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Starts dist/apps/all-in-one with only the given environment (nothing leaks in from the test runner). */
function launch(env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [MAIN], {
    cwd: tempDir(), // no stray .env, and a default ./data would land here
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc: Proc = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout.on('data', (b: Buffer) => (proc.stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (proc.stderr += b.toString()));
  running.add(proc);
  void proc.exited.then(() => running.delete(proc));
  return proc;
}

async function exitOf(proc: Proc, timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms\nstdout:\n${proc.stdout}\nstderr:\n${proc.stderr}`)), timeoutMs);
  });
  try {
    return await Promise.race([proc.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once both ports answer /healthz; fails early, with the output, if the process dies. */
async function ready(proc: Proc, ports: { gateway: number; admin: number }, timeoutMs = 25_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let dead = false;
  void proc.exited.then(() => (dead = true));
  for (;;) {
    if (dead) throw new Error(`exited before ready (code ${proc.child.exitCode})\nstdout:\n${proc.stdout}\nstderr:\n${proc.stderr}`);
    const ok = await Promise.all(
      [ports.gateway, ports.admin].map((p) =>
        fetch(`http://127.0.0.1:${p}/healthz`).then(
          (r) => r.status === 200,
          () => false,
        ),
      ),
    );
    if (ok.every(Boolean)) return;
    if (Date.now() > end) throw new Error(`not ready after ${timeoutMs} ms\nstdout:\n${proc.stdout}\nstderr:\n${proc.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stop(proc: Proc): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  proc.child.kill('SIGTERM');
  return exitOf(proc);
}

async function ports(): Promise<{ gateway: number; admin: number; env: Record<string, string> }> {
  const gateway = await freePort();
  const admin = await freePort();
  return { gateway, admin, env: { GATEWAY_PORT: String(gateway), ADMIN_PORT: String(admin) } };
}

function adminApi(port: number, token?: string) {
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}

beforeAll(() => {
  const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}\n${build.stderr}`);
  expect(existsSync(MAIN)).toBe(true);
});

afterAll(async () => {
  for (const proc of running) proc.child.kill('SIGKILL');
  await Promise.all([...running].map((p) => p.exited));
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

describe('configuration is validated before anything starts', () => {
  it.each([
    ['GATEWAY_PORT', 'abc'],
    ['DATABASE_URL', 'mysql://x'],
  ])('%s=%s: exits non-zero, naming the variable, touching nothing', async (name, value) => {
    const dataDir = tempDir();
    const proc = launch({ DATA_DIR: dataDir, [name]: value });
    const { code } = await exitOf(proc);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(proc.stderr).toContain('Invalid configuration');
    expect(proc.stderr).toContain(name);
    expect(proc.stderr).toContain(value);
    // a message, not a stack trace
    expect(proc.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(join(dataDir, 'pg'))).toBe(false);
  });
});

describe('first start with no configuration, then a restart', () => {
  it('prints a generated admin token once, keeps only its hash, keeps the data, and exits 0 on SIGTERM', async () => {
    const dataDir = tempDir();
    const p1 = await ports();
    const first = launch({ DATA_DIR: dataDir, ...p1.env });
    await ready(first, p1);

    expect(first.stdout.split(BANNER)).toHaveLength(2);
    const token = /^\s+(adm-[A-Za-z0-9_-]{20,})\s*$/m.exec(first.stdout)?.[1];
    expect(token).toBeDefined();
    const admin = adminApi(p1.admin, token);
    expect(await admin('GET', '/admin/tenants')).toEqual({ status: 200, body: [] });
    expect((await adminApi(p1.admin)('GET', '/admin/tenants')).status).toBe(401);
    expect((await adminApi(p1.admin, `${token}x`)('GET', '/admin/tenants')).status).toBe(401);

    const tenant = await admin('POST', '/admin/tenants', { name: 'survivor' });
    expect(tenant.status).toBe(201);
    const key = await admin('POST', `/admin/tenants/${tenant.body.id}/keys`, { name: 'k' });
    expect(key.status).toBe(201);
    expect((await fetch(`http://127.0.0.1:${p1.gateway}/v1/models`, { headers: { authorization: `Bearer ${key.body.secret}` } })).status).toBe(200);

    expect(await stop(first)).toEqual({ code: 0, signal: null });

    const p2 = await ports();
    const second = launch({ DATA_DIR: dataDir, ...p2.env });
    await ready(second, p2);
    expect(second.stdout).not.toContain(BANNER);
    expect(second.stdout + second.stderr).not.toContain(token);
    const again = adminApi(p2.admin, token);
    const tenants = await again('GET', '/admin/tenants');
    expect(tenants.status).toBe(200);
    expect(tenants.body.map((t: any) => t.name)).toEqual(['survivor']);
    expect((await again('GET', `/admin/tenants/${tenant.body.id}/keys`)).body.map((k: any) => k.id)).toEqual([key.body.id]);
    expect((await fetch(`http://127.0.0.1:${p2.gateway}/v1/models`, { headers: { authorization: `Bearer ${key.body.secret}` } })).status).toBe(200);
    expect(await stop(second)).toEqual({ code: 0, signal: null });

    // The process is gone: open its PGlite directory here and look at what it stored.
    const pg = await startEmbeddedPostgres(dataDir);
    const client = new Client({ connectionString: pg.url });
    await client.connect();
    try {
      const settings = (await client.query(`SELECT key, value FROM settings ORDER BY key`)).rows;
      expect(settings).toEqual(expect.arrayContaining([{ key: 'admin_token_sha256', value: createHash('sha256').update(token!).digest('hex') }]));
      expect(JSON.stringify(settings)).not.toContain(token);
    } finally {
      await client.end();
      await pg.stop();
    }
  });
});

describe('zero-config providers from environment variables', () => {
  let openai: FakeProvider;
  let router: FakeProvider;
  let ollama: FakeProvider;
  let database: { url: string; drop: () => Promise<void> } | undefined;
  const ADMIN_TOKEN = `startup-admin-${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    openai = await FakeProvider.start({ flavor: 'openai', apiKey: 'sk-env-openai' });
    router = await FakeProvider.start({ flavor: 'openrouter', apiKey: 'sk-env-openrouter' });
    ollama = await FakeProvider.start({ flavor: 'ollama' });
    // On CI the same start runs against a real PostgreSQL (a database of its own), else embedded PGlite.
    database = await createTestDatabase('gw_startup');
  });

  afterAll(async () => {
    for (const proc of running) proc.child.kill('SIGKILL');
    await Promise.all([...running].map((p) => p.exited));
    await database?.drop();
    await Promise.all([openai?.close(), router?.close(), ollama?.close()]);
  });

  it('registers OpenAI, OpenRouter and Ollama with default routes, once, across restarts', async () => {
    const dataDir = tempDir();
    const env = (ollamaUrl: string) => ({
      DATA_DIR: dataDir,
      ...(database ? { DATABASE_URL: database.url } : {}),
      ADMIN_TOKEN,
      OPENAI_API_KEY: 'sk-env-openai',
      OPENAI_BASE_URL: openai.baseUrl,
      OPENROUTER_API_KEY: 'sk-env-openrouter',
      OPENROUTER_BASE_URL: router.baseUrl,
      OLLAMA_BASE_URL: ollamaUrl,
    });

    // 1st start: Ollama given as its origin, the way people write it (no /v1)
    const p1 = await ports();
    const first = launch({ ...env(ollama.origin), ...p1.env });
    await ready(first, p1);
    expect(first.stdout).not.toContain(BANNER);
    expect(ollama.requestsTo('/api/tags').length).toBeGreaterThan(0);

    const admin = adminApi(p1.admin, ADMIN_TOKEN);
    const tenant = await admin('POST', '/admin/tenants', { name: 'zero-config' });
    const key = await admin('POST', `/admin/tenants/${tenant.body.id}/keys`, { name: 'k' });
    expect([tenant.status, key.status]).toEqual([201, 201]);

    const providers = (await admin('GET', '/admin/providers')).body;
    expect(providers.map((p: any) => [p.name, p.kind, p.baseUrl, p.hasCredential])).toEqual([
      ['openai', 'openai', openai.baseUrl, true],
      ['openrouter', 'openrouter', router.baseUrl, true],
      ['ollama', 'ollama', `${ollama.origin}/v1`, false],
    ]);
    expect(JSON.stringify(providers)).not.toMatch(/sk-env-/);
    const routes = (await admin('GET', '/admin/routes')).body;
    expect(routes.map((r: any) => r.modelPattern).sort()).toEqual(['*', '*/*', 'gpt-oss*', 'gpt-oss:20b', 'llama3.2'].sort());

    const client = new OpenAI({ apiKey: key.body.secret, baseURL: `http://127.0.0.1:${p1.gateway}/v1`, maxRetries: 0 });
    const ask = (model: string) => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
    for (const model of ['gpt-oss:20b', 'llama3.2', 'anthropic/claude-3.5-sonnet', 'gpt-4o-mini']) await ask(model);
    const sent = (f: FakeProvider) => f.requestsTo('/chat/completions').map((r) => r.body.model);
    expect(sent(ollama)).toEqual(['gpt-oss:20b', 'llama3.2']);
    expect(sent(router)).toEqual(['anthropic/claude-3.5-sonnet']);
    expect(sent(openai)).toEqual(['gpt-4o-mini']);
    expect(router.requestsTo('/chat/completions')[0].headers.authorization).toBe('Bearer sk-env-openrouter');
    expect(openai.requestsTo('/chat/completions')[0].headers.authorization).toBe('Bearer sk-env-openai');
    expect(ollama.requestsTo('/chat/completions').every((r) => r.path === '/v1/chat/completions')).toBe(true);

    const models = (await client.models.list()).data;
    expect(
      models
        .filter((m) => m.owned_by === 'ollama')
        .map((m) => m.id)
        .sort(),
    ).toEqual(['gpt-oss:20b', 'llama3.2']);
    expect(await stop(first)).toEqual({ code: 0, signal: null });

    // 2nd start, same environment but OLLAMA_BASE_URL with /v1: same providers and routes, nothing doubled
    openai.reset();
    router.reset();
    ollama.reset();
    const p2 = await ports();
    const second = launch({ ...env(`${ollama.origin}/v1`), ...p2.env });
    await ready(second, p2);
    const again = adminApi(p2.admin, ADMIN_TOKEN);
    const providers2 = (await again('GET', '/admin/providers')).body;
    expect(providers2.map((p: any) => [p.id, p.baseUrl])).toEqual(providers.map((p: any) => [p.id, p.baseUrl]));
    const routes2 = (await again('GET', '/admin/routes')).body;
    expect(routes2.map((r: any) => [r.id, r.modelPattern]).sort()).toEqual(routes.map((r: any) => [r.id, r.modelPattern]).sort());

    const client2 = new OpenAI({ apiKey: key.body.secret, baseURL: `http://127.0.0.1:${p2.gateway}/v1`, maxRetries: 0 });
    await client2.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'still there?' }] });
    await client2.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'and you?' }] });
    expect(sent(ollama)).toEqual(['llama3.2']);
    expect(sent(openai)).toEqual(['gpt-4o-mini']);
    expect(ollama.requestsTo('/chat/completions')[0].path).toBe('/v1/chat/completions');
    expect(await stop(second)).toEqual({ code: 0, signal: null });
  });
});
