import { MediumDatabase, mediumDatabase } from '@gw/testing';
import { DatabaseLock, DatabaseRepository } from './database.repository';
import { SettingEntity } from './entities';
import { SettingsRepository } from './settings.repository';

// Starting a PGlite copy takes seconds on a loaded machine.
jest.setTimeout(60_000);

describe('DatabaseRepository and SettingsRepository on a real database', () => {
  let db: MediumDatabase;
  let database: DatabaseRepository;
  let settings: SettingsRepository;

  beforeAll(async () => {
    db = await mediumDatabase();
    database = new DatabaseRepository(db.dataSource);
    settings = new SettingsRepository(db.dataSource.getRepository(SettingEntity));
  });
  afterAll(() => db?.close());

  it('pings', async () => {
    await expect(database.ping()).resolves.toBeUndefined();
  });

  it('runs work under an advisory lock and releases it, whatever the work does', async () => {
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = database.withLock(DatabaseLock.EnvProviders, async () => {
      order.push('first in');
      await held;
      order.push('first out');
    });
    await new Promise((r) => setTimeout(r, 100));
    const second = database.withLock(DatabaseLock.EnvProviders, async () => void order.push('second'));
    await new Promise((r) => setTimeout(r, 200));
    // PGlite serves every connection from its one session, where advisory locks are reentrant: they only
    // serialise on PostgreSQL (what replicas run on). Either way the second holder gets in, and only once.
    const serialised = !!process.env.TEST_DATABASE_URL;
    expect(order).toEqual(serialised ? ['first in'] : ['first in', 'second']);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(serialised ? ['first in', 'first out', 'second'] : ['first in', 'second', 'first out']);
    await expect(database.withLock(DatabaseLock.EnvProviders, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(database.withLock(DatabaseLock.EnvProviders, async () => 'ok')).resolves.toBe('ok');
  });

  it('settings: set, setIfAbsent once, and config_version bumped and read back', async () => {
    expect(await settings.setIfAbsent('k', 'one')).toBe(true);
    expect(await settings.setIfAbsent('k', 'two')).toBe(false);
    expect(await settings.get('k')).toBe('one');
    await settings.set('k', 'three');
    expect(await settings.get('k')).toBe('three');
    expect(await settings.get('absent')).toBeUndefined();
    const v = Number(await settings.configVersion());
    expect(await settings.bumpConfigVersion()).toBe(String(v + 1));
    expect(await settings.configVersion()).toBe(String(v + 1));
  });
});
