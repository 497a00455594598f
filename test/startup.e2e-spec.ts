import OpenAI from 'openai';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startEmbeddedPostgres } from '@gw/db';
import { FakeProvider, createTestDatabase, eventually } from '@gw/testing';

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

/** The app's one child: the embedded database (libs/db embedded-postgres.main.ts). */
function databaseChild(proc: Proc): number {
  const children = readFileSync(`/proc/${proc.child.pid}/task/${proc.child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  expect(children).toHaveLength(1);
  expect(readFileSync(`/proc/${children[0]}/cmdline`, 'utf8')).toContain('embedded-postgres.main.js');
  return children[0];
}

/** Files under `dir` that process `pid` has open. */
function filesOpenIn(pid: number, dir: string): string[] {
  return readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((f) => f.startsWith(dir));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
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
    ['LOG_FORMAT', 'xml'],
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

    // Not a TTY, so JSON lines: the token (a secret, not a log event) is shown once, on stderr, and stdout stays JSON.
    expect(first.stderr.split(BANNER)).toHaveLength(2);
    expect(first.stdout).not.toContain(BANNER);
    const token = /^\s+(adm-[A-Za-z0-9_-]{20,})\s*$/m.exec(first.stderr)?.[1];
    expect(token).toBeDefined();
    expect(first.stdout).not.toContain(token);

    // The embedded database is a child process of the app, and only the child has the data directory open.
    const db = databaseChild(first);
    expect(filesOpenIn(db, join(dataDir, 'pg')).length).toBeGreaterThan(0);
    expect(filesOpenIn(first.child.pid!, join(dataDir, 'pg'))).toEqual([]);
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
    // SIGTERM stopped both: the app waited for its database to close its files before exiting.
    expect(alive(db)).toBe(false);

    const p2 = await ports();
    const second = launch({ DATA_DIR: dataDir, ...p2.env });
    await ready(second, p2);
    expect(second.stdout + second.stderr).not.toContain(BANNER);
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

describe('the embedded database process', () => {
  let upstream: FakeProvider;
  const ADMIN_TOKEN = `startup-admin-${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    upstream = await FakeProvider.start({ flavor: 'openai', apiKey: 'sk-upstream' });
  });
  afterAll(async () => {
    for (const proc of running) proc.child.kill('SIGKILL');
    await Promise.all([...running].map((p) => p.exited));
    await upstream?.close();
  });

  it('killed: the app logs it, /readyz answers 503, requests are still served, and their usage rows reach the database after a restart', async () => {
    const dataDir = tempDir();
    const p1 = await ports();
    const first = launch({ DATA_DIR: dataDir, ADMIN_TOKEN, LOG_LEVEL: 'info', ...p1.env });
    await ready(first, p1);
    const admin = adminApi(p1.admin, ADMIN_TOKEN);
    const tenant = (await admin('POST', '/admin/tenants', { name: 'outage' })).body;
    const key = (await admin('POST', `/admin/tenants/${tenant.id}/keys`, { name: 'k' })).body.secret as string;
    const provider = (await admin('POST', '/admin/providers', { name: 'up', kind: 'openai', baseUrl: upstream.baseUrl, credential: 'sk-upstream' })).body;
    expect((await admin('POST', '/admin/routes', { modelPattern: 'gpt-4o-mini', targets: [{ providerId: provider.id }] })).status).toBe(201);
    const client = new OpenAI({ apiKey: key, baseURL: `http://127.0.0.1:${p1.gateway}/v1`, maxRetries: 0 });
    const ask = () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    // The gateway's caches pick up the route (the change feed polls): the first answer may take a moment.
    await eventually(
      () =>
        ask().then(
          () => true,
          () => false,
        ),
      10_000,
      100,
      'the route to be served',
    );
    expect((await fetch(`http://127.0.0.1:${p1.gateway}/readyz`)).status).toBe(200);

    const db = databaseChild(first);
    process.kill(db, 'SIGKILL');
    await eventually(async () => (await fetch(`http://127.0.0.1:${p1.gateway}/readyz`)).status === 503, 10_000, 100, '/readyz to answer 503');
    expect(await (await fetch(`http://127.0.0.1:${p1.gateway}/readyz`)).json()).toEqual({ status: 'unavailable', reason: 'database unreachable' });
    expect(first.stdout).toContain('exited unexpectedly');
    // Keys, routes and prices are in memory: the data plane keeps answering; the ledger keeps the rows.
    const during = await ask();
    expect(during.choices[0].message.content).toBeTruthy();
    expect(first.child.exitCode).toBeNull();
    // The ledger cannot flush at shutdown: its rows stay in the journal, and the app still exits cleanly.
    expect(await stop(first)).toEqual({ code: 0, signal: null });

    // The next start recovers the killed database's files and replays the journal into it.
    const p2 = await ports();
    const second = launch({ DATA_DIR: dataDir, ADMIN_TOKEN, ...p2.env });
    await ready(second, p2);
    const again = adminApi(p2.admin, ADMIN_TOKEN);
    const usage = await eventually(
      async () => {
        const u = await again('GET', `/admin/usage?tenantId=${tenant.id}`);
        return u.body?.data?.[0]?.requests >= 2 ? u.body.data[0] : undefined;
      },
      15_000,
      200,
      'both requests in the usage table',
    );
    expect(usage.requests).toBe(2);
    expect((await again('GET', '/admin/tenants')).body.map((t: any) => t.name)).toEqual(['outage']);
    expect(await stop(second)).toEqual({ code: 0, signal: null });
  });

  it('outlives no parent: SIGKILL on the app, and the database child exits by itself (its IPC channel closed)', async () => {
    const p = await ports();
    const proc = launch({ DATA_DIR: tempDir(), ADMIN_TOKEN, ...p.env });
    await ready(proc, p);
    const db = databaseChild(proc);
    proc.child.kill('SIGKILL');
    await proc.exited;
    await eventually(() => !alive(db), 15_000, 50, 'the database child to exit');
  });
});

describe("a newcomer's terminal: LOG_FORMAT", () => {
  it('pretty: readable lines, then where things are, what runs, and the generated admin token, once', async () => {
    const dataDir = tempDir();
    const p = await ports();
    const proc = launch({ DATA_DIR: dataDir, LOG_LEVEL: 'info', LOG_FORMAT: 'pretty', ...p.env });
    await ready(proc, p);
    await eventually(() => proc.stdout.includes('limits'), 5_000, 50, 'the start lines');
    const out = proc.stdout;
    // No JSON: readable lines with a time, a level and the context.
    expect(out.split('\n').filter((l) => l.trim().startsWith('{'))).toEqual([]);
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: \[Migrations\] applied /m);
    // Nest's module-by-module chatter is debug, so the start lines are close to the top.
    expect(out).not.toContain('InstanceLoader');
    expect(out).toContain(`  gateway   http://127.0.0.1:${p.gateway}/v1\n`);
    expect(out).toContain(`  admin     http://127.0.0.1:${p.admin}/admin\n`);
    expect(out).toContain(`  docs      http://127.0.0.1:${p.admin}/admin/docs\n`);
    // A fresh DATA_DIR: the PGlite template unpacked, no initdb (its ~700 MB peak).
    expect(out).toMatch(
      new RegExp(
        `  database  embedded PGlite in ${dataDir}/pg \\(process ${databaseChild(proc)}, 127\\.0\\.0\\.1:\\d+; initialised from the PGlite [\\d.]+ template\\)\\n`,
      ),
    );
    expect(out).toContain('  limits    in-process memory');
    expect(out.split(BANNER)).toHaveLength(2);
    const token = /^\s+(adm-[A-Za-z0-9_-]{20,})\s*$/m.exec(out)?.[1];
    expect((await adminApi(p.admin, token)('GET', '/admin/tenants')).status).toBe(200);
    // A request line is one line.
    await fetch(`http://127.0.0.1:${p.admin}/admin/tenants`, { headers: { authorization: `Bearer ${token}` } });
    await eventually(() => /admin GET \/admin\/tenants 200 \d+ ms/.test(proc.stdout), 5_000, 50, 'the request line');
    expect(proc.stderr).toBe('');
    expect(await stop(proc)).toEqual({ code: 0, signal: null });
  });

  it('json: one JSON object a line on stdout, the start lines among them, and PostgreSQL named without its password', async () => {
    const p = await ports();
    const database = await createTestDatabase('gw_startup_json');
    try {
      const dataDir = tempDir();
      const env = { DATA_DIR: dataDir, LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...p.env, ...(database ? { DATABASE_URL: database.url } : {}) };
      const proc = launch(env);
      await ready(proc, p);
      await eventually(() => proc.stdout.includes('"limits: '), 5_000, 50, 'the start lines');
      const lines = proc.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const l of lines) expect(l).toEqual(expect.objectContaining({ level: expect.any(String), time: expect.any(String), msg: expect.any(String) }));
      const start = lines.filter((l) => l.context === 'Start').map((l) => l.msg);
      expect(start.slice(0, 3)).toEqual([
        `gateway: http://127.0.0.1:${p.gateway}/v1`,
        `admin: http://127.0.0.1:${p.admin}/admin`,
        `docs: http://127.0.0.1:${p.admin}/admin/docs`,
      ]);
      const dbLine = start.find((m) => String(m).startsWith('database: '));
      if (database) {
        const u = new URL(database.url);
        expect(dbLine).toBe(`database: PostgreSQL ${u.username ? `${u.username}@` : ''}${u.host}${u.pathname}`);
        if (u.password) expect(proc.stdout).not.toContain(u.password);
      } else expect(dbLine).toMatch(/^database: embedded PGlite in .* \(process \d+, 127\.0\.0\.1:\d+; initialised from the PGlite [\d.]+ template\)$/);
      expect(start).toContain('limits: in-process memory (set REDIS_URL to share them between processes)');
      // The generated token went to stderr, once.
      expect(proc.stderr.split(BANNER)).toHaveLength(2);
      expect(await stop(proc)).toEqual({ code: 0, signal: null });
    } finally {
      await database?.drop();
    }
  });
});
