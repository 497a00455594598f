import { Logger } from '@nestjs/common';
import { AppConfig, decodeKey } from '@gw/config';
import { SecretBox } from '@gw/common';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * The key that seals provider credentials. From MASTER_KEY in production; on a laptop it is generated
 * once into `${DATA_DIR}/master.key` (mode 0600), so `npm start` needs no setup and a database dump
 * alone reveals nothing. Created with O_EXCL (`wx`): of two processes starting at once on a shared DATA_DIR,
 * one writes the key and the other reads it, so both seal with the same key.
 */
export function loadMasterKey(cfg: AppConfig): SecretBox {
  if (cfg.masterKey) return new SecretBox(decodeKey(cfg.masterKey)!);
  const file = resolve(cfg.dataDir, 'master.key');
  mkdirSync(dirname(file), { recursive: true });
  try {
    writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    new Logger('MasterKey').warn(`MASTER_KEY is not set: generated ${file}. Back it up, or set MASTER_KEY in production.`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  chmodSync(file, 0o600);
  const key = decodeKey(readKeyFile(file));
  if (!key) throw new Error(`${file} does not hold a 32-byte base64 or hex key`);
  return new SecretBox(key);
}

/**
 * The key file's text. A file another process has just created (O_EXCL) may not hold its line yet: a
 * 44-byte write is one syscall, so an empty read is retried briefly rather than taken as a bad key.
 */
function readKeyFile(file: string): string {
  let text = readFileSync(file, 'utf8').trim();
  for (let i = 0; i < 50 && !text; i++) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    text = readFileSync(file, 'utf8').trim();
  }
  return text;
}
