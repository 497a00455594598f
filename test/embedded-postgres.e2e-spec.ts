import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { EmbeddedPostgres, startEmbeddedPostgres } from '@gw/db';

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
