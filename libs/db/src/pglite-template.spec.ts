import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPgliteTemplate, installedPgliteVersion, PGLITE_TEMPLATE_ASSETS, PgliteTemplateMeta, unpackPgliteTemplate } from './pglite-template';

let scratch: string;
beforeEach(() => (scratch = mkdtempSync(join(tmpdir(), 'gw-pglite-template-'))));
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

const committed = (): PgliteTemplateMeta => JSON.parse(readFileSync(join(PGLITE_TEMPLATE_ASSETS, 'pglite-template.json'), 'utf8')) as PgliteTemplateMeta;

describe('the committed PGlite template', () => {
  it('was made by the installed @electric-sql/pglite and matches its sha256 (after a PGlite bump: npm run pglite-template)', async () => {
    const t = await checkPgliteTemplate();
    if (!t.ok) throw new Error(`${t.reason}: run \`npm run pglite-template\` and commit libs/db/assets`);
    expect(t.meta).toEqual(committed());
    expect(t.meta.pglite).toBe(installedPgliteVersion());
    expect(t.meta.pgVersion).toMatch(/^\d+$/);
  });
});

describe('checkPgliteTemplate', () => {
  it('refuses, saying why: another PGlite version, a tarball that is not the one described, no template', async () => {
    expect(await checkPgliteTemplate(PGLITE_TEMPLATE_ASSETS, '9.9.9')).toEqual({
      ok: false,
      reason: `the PGlite template was made by PGlite ${committed().pglite}, and 9.9.9 is installed`,
    });

    const assets = join(scratch, 'assets');
    cpSync(PGLITE_TEMPLATE_ASSETS, assets, { recursive: true });
    writeFileSync(join(assets, 'pglite-template.json'), JSON.stringify({ ...committed(), sha256: '0'.repeat(64) }));
    const wrongSum = await checkPgliteTemplate(assets);
    expect(wrongSum.ok).toBe(false);
    expect(!wrongSum.ok && wrongSum.reason).toBe(
      `${join(assets, 'pglite-template.tar.gz')}'s sha256 is ${committed().sha256}, not ${'0'.repeat(64)} as pglite-template.json says`,
    );

    expect(await checkPgliteTemplate(join(scratch, 'nowhere'))).toEqual({
      ok: false,
      reason: `no PGlite template at ${join(scratch, 'nowhere', 'pglite-template.tar.gz')}`,
    });
  });
});

describe('unpackPgliteTemplate', () => {
  const tarball = join(PGLITE_TEMPLATE_ASSETS, 'pglite-template.tar.gz');

  it('unpacks the data directory next to its place and renames it in; an empty directory gives way, leftovers of a crash go', async () => {
    const dir = join(scratch, 'pg');
    mkdirSync(dir);
    mkdirSync(join(scratch, 'pg.init-999999'));
    writeFileSync(join(scratch, 'pg.init-999999', 'half'), '');
    const stats = await unpackPgliteTemplate(tarball, dir);
    expect(readFileSync(join(dir, 'PG_VERSION'), 'utf8').trim()).toBe(committed().pgVersion);
    expect(stats.files).toBeGreaterThan(900);
    expect(stats.bytes).toBeGreaterThan(30_000_000);
    expect(existsSync(join(dir, 'global', 'pg_control'))).toBe(true);
    expect(readdirSync(scratch)).toEqual(['pg']);
  });

  it('a directory with files is not replaced; a corrupt tarball leaves nothing that looks initialised', async () => {
    const dir = join(scratch, 'pg');
    mkdirSync(dir);
    writeFileSync(join(dir, 'mine'), 'x');
    await expect(unpackPgliteTemplate(tarball, dir)).rejects.toThrow(/ENOTEMPTY|EEXIST/);
    expect(readdirSync(dir)).toEqual(['mine']);
    expect(readdirSync(scratch)).toEqual(['pg']);

    const cut = join(scratch, 'cut.tar.gz');
    writeFileSync(cut, readFileSync(tarball).subarray(0, 2_000_000));
    const fresh = join(scratch, 'fresh');
    await expect(unpackPgliteTemplate(cut, fresh)).rejects.toThrow(/unexpected end of file/);
    expect(existsSync(fresh)).toBe(false);
    expect(readdirSync(scratch).sort()).toEqual(['cut.tar.gz', 'pg']);
  });
});
