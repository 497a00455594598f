import { parseConfig } from '@gw/config';
import { describeDatabase } from './database-url';
import { installedPgliteVersion } from './pglite-template';

describe('describeDatabase (the start lines)', () => {
  it('names PostgreSQL by user, host and database, never the password', () => {
    const cfg = parseConfig({ DATABASE_URL: 'postgres://gw:s3cret-pw@db.internal:5433/gateway?sslmode=require' });
    expect(describeDatabase(cfg)).toBe('PostgreSQL gw@db.internal:5433/gateway');
    expect(describeDatabase(cfg)).not.toContain('s3cret');
  });

  it('names the embedded database by its directory, process and address', () => {
    const cfg = parseConfig({});
    expect(describeDatabase(cfg, { url: 'postgres://postgres@127.0.0.1:40001/postgres', pid: 4242, dir: '/srv/gw/data/pg', stop: async () => undefined })).toBe(
      'embedded PGlite in /srv/gw/data/pg (process 4242, 127.0.0.1:40001)',
    );
  });

  it('says how a first start made the directory: the PGlite template (its version), or initdb', () => {
    const cfg = parseConfig({});
    const db = { url: 'postgres://postgres@127.0.0.1:40001/postgres', pid: 4242, dir: '/srv/gw/data/pg', stop: async () => undefined };
    expect(describeDatabase(cfg, { ...db, initialised: 'template' })).toBe(
      `embedded PGlite in /srv/gw/data/pg (process 4242, 127.0.0.1:40001; initialised from the PGlite ${installedPgliteVersion()} template)`,
    );
    expect(installedPgliteVersion()).toMatch(/^\d+\.\d+\.\d+/);
    expect(describeDatabase(cfg, { ...db, initialised: 'initdb' })).toBe(
      'embedded PGlite in /srv/gw/data/pg (process 4242, 127.0.0.1:40001; initialised by initdb (no PGlite template fits))',
    );
  });
});
