import { ChildProcess, fork, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { EmbeddedPostgres, MIGRATIONS, checkPgliteTemplate, runMigrations, startEmbeddedPostgres } from '@gw/db';

jest.setTimeout(60_000);

/**
 * The embedded database (PGlite behind pglite-socket) under concurrent connections whose queries fail:
 * a failing query (a NUL byte: 22021) must not take other connections' queries with it (found by the fuzz).
 */
describe('embedded Postgres: concurrent connections', () => {
  let dir: string;
  let pg: EmbeddedPostgres;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-embedded-'));
    pg = await startEmbeddedPostgres(dir);
  });

  afterAll(async () => {
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a failing parameterised query fails alone: 16 connections, every other query succeeds with its own result', async () => {
    const clients = await Promise.all(
      Array.from({ length: 16 }, async () => {
        const c = new Client({ connectionString: pg.url });
        await c.connect();
        return c;
      }),
    );
    const wrong: string[] = [];
    try {
      await Promise.all(
        clients.map(async (c, n) => {
          for (let i = 0; i < 100; i++) {
            if ((i + n) % 3 === 1) {
              // As TypeORM saves: a transaction whose statement fails, then ROLLBACK.
              await c.query('BEGIN').catch((e: Error) => wrong.push(`BEGIN: ${e.message}`));
              await c.query('SELECT $1::text AS v', ['a\u0000b']).catch(() => undefined);
              await c.query('ROLLBACK').catch((e: Error) => wrong.push(`ROLLBACK: ${e.message}`));
            } else if ((i + n) % 3 === 0) {
              await c.query('SELECT $1::text AS v', ['a\u0000b']).then(
                () => wrong.push('a NUL was accepted'),
                (e: { code?: string }) => {
                  if (e.code !== '22021') wrong.push(`NUL: ${e.code} ${(e as Error).message}`);
                },
              );
            } else {
              // Different parameter counts per connection: a Bind against another's statement would show.
              const params = Array.from({ length: 1 + (n % 4) }, (_, k) => `${n}-${i}-${k}`);
              const sql = `SELECT ${params.map((_, k) => `$${k + 1}::text`).join(" || ',' || ")} AS v`;
              const r = await c.query(sql, params).catch((e: Error) => ({ rows: [{ v: `error: ${e.message}` }] }));
              if (r.rows[0]?.v !== params.join(',')) wrong.push(`${params.join(',')} → ${r.rows[0]?.v}`);
            }
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    expect(wrong).toEqual([]);
  });
});

/**
 * A new data directory is the PGlite template unpacked (libs/db/assets, pglite-template.ts), not initdb's output:
 * initdb peaks at ~700 MB of WASM memory. The directory must be a working database: the migrations apply, and the
 * data survives a restart.
 */
describe('embedded Postgres: a new data directory from the PGlite template', () => {
  it('is unpacked (no initdb), accepts every migration, and opens again with its data', async () => {
    const template = await checkPgliteTemplate();
    expect(template.ok).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'gw-embedded-template-'));
    try {
      const first = await startEmbeddedPostgres(dir);
      expect(first.initialised).toBe('template');
      const ds = new DataSource({ type: 'postgres', url: first.url, migrations: MIGRATIONS, synchronize: false, logging: ['error'] });
      await ds.initialize();
      try {
        expect(await runMigrations(ds, { log() {} } as never)).toHaveLength(MIGRATIONS.length);
        await ds.query(`INSERT INTO settings (key, value) VALUES ('template_check', 'kept')`);
        // The template's PG_VERSION is the server's major version.
        const [{ server_version_num }] = await ds.query<{ server_version_num: string }[]>('SHOW server_version_num');
        expect(String(Math.floor(Number(server_version_num) / 10000))).toBe(template.ok && template.meta.pgVersion);
      } finally {
        await ds.destroy();
      }
      await first.stop();

      const second = await startEmbeddedPostgres(dir);
      expect(second.initialised).toBeUndefined();
      const c = new Client({ connectionString: second.url });
      await c.connect();
      try {
        expect((await c.query(`SELECT value FROM settings WHERE key = 'template_check'`)).rows).toEqual([{ value: 'kept' }]);
      } finally {
        await c.end();
        await second.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The database process of `npm start` (dist/libs/db/src/embedded-postgres.main.js, forked by the app): it reports
 * its URL over IPC, leaves SIGINT/SIGTERM to its parent while the parent is there, closes PGlite's files on `stop`,
 * and stops by itself when the IPC channel closes.
 */
describe('embedded Postgres: the database process', () => {
  const ROOT = join(__dirname, '..');
  const ENTRY = join(ROOT, 'dist', 'libs', 'db', 'src', 'embedded-postgres.main.js');
  let dir: string;

  beforeAll(() => {
    const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}\n${build.stderr}`);
    dir = mkdtempSync(join(tmpdir(), 'gw-embedded-process-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function start(): Promise<{ child: ChildProcess; url: string; initialised?: string; stderr: () => string; exited: Promise<number | null> }> {
    const child = fork(ENTRY, [dir], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [] });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const m = await new Promise<{ url: string; initialised?: string }>((resolve, reject) => {
      child.once('message', (msg: { url?: string; initialised?: string }) =>
        msg?.url ? resolve(msg as { url: string }) : reject(new Error(JSON.stringify(msg))),
      );
      void exited.then((code) => reject(new Error(`exited ${code} before reporting its URL:\n${stderr}`)));
    });
    return { child, url: m.url, initialised: m.initialised, stderr: () => stderr, exited };
  }

  async function query(url: string, sql: string, params: unknown[] = []): Promise<unknown[]> {
    const c = new Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows;
    } finally {
      await c.end();
    }
  }

  it('initialises a new directory from the template, ignores signals while its parent is there, closes its files on `stop`, and the data survives', async () => {
    const first = await start();
    // From the template, in this process: no `--init` child ran initdb (~700 MB), and nothing was worth a warning.
    expect(first.initialised).toBe('template');
    expect(first.stderr()).toBe('');
    await query(first.url, 'CREATE TABLE kept (v text)');
    await query(first.url, 'INSERT INTO kept VALUES ($1)', ['before the restart']);
    // Ctrl-C and systemd signal every process of the group: the parent decides when the database stops.
    first.child.kill('SIGINT');
    first.child.kill('SIGTERM');
    expect(await query(first.url, 'SELECT v FROM kept')).toEqual([{ v: 'before the restart' }]);
    expect(await query(first.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(first.child.exitCode).toBeNull();
    first.child.send('stop');
    expect(await first.exited).toBe(0);

    const second = await start();
    expect(second.initialised).toBeUndefined();
    expect(await query(second.url, 'SELECT v FROM kept')).toEqual([{ v: 'before the restart' }]);
    // The parent goes away (here: closes the channel): no orphan keeps the directory open.
    second.child.disconnect();
    expect(await second.exited).toBe(0);
  });

  it('one process per data directory: a second one is refused by name; a lock left by a dead process is taken over', async () => {
    const first = await start();
    const second = fork(ENTRY, [dir], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [] });
    let stderr = '';
    second.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((r) => second.once('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(stderr).toContain(`${join(dir, 'pg')} is in use by process ${first.child.pid}`);
    // The first one never noticed.
    expect(await query(first.url, 'SELECT v FROM kept')).toEqual([{ v: 'before the restart' }]);
    first.child.kill('SIGKILL');
    await first.exited;

    // Its lock file stays behind with a dead pid: the next start takes it over (and PGlite recovers its files).
    writeFileSync(join(dir, 'pg.pid'), String(first.child.pid));
    const third = await start();
    expect(await query(third.url, 'SELECT v FROM kept')).toEqual([{ v: 'before the restart' }]);
    third.child.send('stop');
    expect(await third.exited).toBe(0);
  });
});
