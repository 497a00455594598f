import { AuditEntryEntity, AuditRepository, ProviderEntity, SettingEntity, SettingsRepository } from '@gw/db';
import { MediumDatabase, mediumDatabase } from '@gw/testing';
import { ProviderRepository } from './provider.repository';

// Starting a PGlite copy takes seconds on a loaded machine.
jest.setTimeout(60_000);

describe('ProviderRepository on a real database (with the master-key rotation transaction)', () => {
  let db: MediumDatabase;
  let providers: ProviderRepository;
  let settings: SettingsRepository;

  beforeAll(async () => {
    db = await mediumDatabase();
    providers = new ProviderRepository(db.dataSource.getRepository(ProviderEntity));
    settings = new SettingsRepository(db.dataSource.getRepository(SettingEntity));
  });
  afterAll(() => db?.close());

  const base = { kind: 'openai' as const, baseUrl: 'https://api.openai.com/v1', settings: {} };

  it('finds by name, updates, and an empty patch changes nothing', async () => {
    const p = await providers.save({ ...base, name: 'one', credentialEnc: null });
    expect((await providers.findByName('one'))?.id).toBe(p.id);
    expect((await providers.update(p.id, {}))?.name).toBe('one');
    expect((await providers.update(p.id, { enabled: false }))?.enabled).toBe(false);
    await expect(providers.save({ ...base, name: 'one', credentialEnc: null })).rejects.toMatchObject({ code: '23505' });
    expect(await providers.delete(p.id)).toBe(true);
    expect(await providers.delete(p.id)).toBe(false);
  });

  it('a rotation rolled back leaves credentials, config_version and the audit log as they were', async () => {
    const p = await providers.save({ ...base, name: 'rolled-back', credentialEnc: 'v1:old:sealed' });
    const version = await settings.configVersion();
    await expect(
      db.dataSource.transaction(async (m) => {
        await new ProviderRepository(m.getRepository(ProviderEntity)).setSealedCredential(p.id, 'v1:new:sealed');
        await new SettingsRepository(m.getRepository(SettingEntity)).bumpConfigVersion();
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect((await providers.get(p.id))?.credentialEnc).toBe('v1:old:sealed');
    expect(await settings.configVersion()).toBe(version);
  });

  it('a rotation committed: sealed credentials listed and locked, rewritten, config_version bumped, one audit entry', async () => {
    const sealed = await providers.save({ ...base, name: 'sealed', credentialEnc: 'v1:old:s' });
    await providers.save({ ...base, name: 'no-credential', credentialEnc: null });
    const version = Number(await settings.configVersion());
    await db.dataSource.transaction(async (m) => {
      const tx = new ProviderRepository(m.getRepository(ProviderEntity));
      const rows = await tx.lockSealedCredentials();
      expect(rows.map((r) => r.name)).toEqual([...rows.map((r) => r.name)].sort());
      expect(rows.find((r) => r.id === sealed.id)).toEqual({ id: sealed.id, name: 'sealed', credentialEnc: 'v1:old:s' });
      expect(rows.some((r) => r.name === 'no-credential')).toBe(false);
      await tx.setSealedCredential(sealed.id, 'v1:new:s');
      expect(await new SettingsRepository(m.getRepository(SettingEntity)).bumpConfigVersion()).toBe(String(version + 1));
      const audit = new AuditRepository(m.getRepository(AuditEntryEntity));
      expect(await audit.exists()).toBe(true);
      await audit.append({ actorRole: 'system', action: 'master_key.rotate', objectType: 'master_key', objectId: 'new', before: { keyId: 'old' }, after: { keyId: 'new' } });
    });
    expect((await providers.get(sealed.id))?.credentialEnc).toBe('v1:new:s');
    expect(await settings.configVersion()).toBe(String(version + 1));
    const entries = await new AuditRepository(db.dataSource.getRepository(AuditEntryEntity)).list('all', { action: 'master_key.*', limit: 10 });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actorRole: 'system', objectId: 'new', tenantId: null, before: { keyId: 'old' }, after: { keyId: 'new' } });
  });
});
