import type { AppConfig } from '@gw/config';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMasterKey } from './master-key';

describe('loadMasterKey without MASTER_KEY', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'gw-mk-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const cfg = (dataDir: string) => ({ dataDir }) as AppConfig;

  it('generates the key file once (mode 0600); every later load reads that same key', () => {
    const quiet = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const a = loadMasterKey(cfg(join(dir, 'nested')));
      const b = loadMasterKey(cfg(join(dir, 'nested')));
      expect(b.keyId).toBe(a.keyId);
      expect(statSync(join(dir, 'nested', 'master.key')).mode & 0o777).toBe(0o600);
    } finally {
      quiet.mockRestore();
    }
  });

  it('never overwrites a key file that exists (created with O_EXCL): it reads it', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    writeFileSync(join(dir, 'master.key'), `${key}\n`, { mode: 0o644 });
    const box = loadMasterKey(cfg(dir));
    expect(readFileSync(join(dir, 'master.key'), 'utf8').trim()).toBe(key);
    expect(box.open(box.seal('x'))).toBe('x');
    expect(statSync(join(dir, 'master.key')).mode & 0o777).toBe(0o600);
  });

  it('refuses a file that does not hold a key', () => {
    writeFileSync(join(dir, 'master.key'), 'not a key\n');
    expect(() => loadMasterKey(cfg(dir))).toThrow(/32-byte/);
  });
});
