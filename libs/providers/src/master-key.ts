import { Logger } from '@nestjs/common';
import { AppConfig, decodeKey } from '@gw/config';
import { SecretBox } from '@gw/common';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * The key that seals provider credentials. From MASTER_KEY in production; on a laptop it is generated
 * once into `${DATA_DIR}/master.key` (mode 0600), so `npm start` needs no setup and a database dump
 * alone reveals nothing.
 */
export function loadMasterKey(cfg: AppConfig): SecretBox {
  if (cfg.masterKey) return new SecretBox(decodeKey(cfg.masterKey)!);
  const file = resolve(cfg.dataDir, 'master.key');
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    new Logger('MasterKey').warn(`MASTER_KEY is not set: generated ${file}. Back it up, or set MASTER_KEY in production.`);
  }
  chmodSync(file, 0o600);
  const key = decodeKey(readFileSync(file, 'utf8').trim());
  if (!key) throw new Error(`${file} does not hold a 32-byte base64 or hex key`);
  return new SecretBox(key);
}
