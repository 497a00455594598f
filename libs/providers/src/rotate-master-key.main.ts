import 'reflect-metadata';
import { AppConfig, decodeKey, parseConfig } from '@gw/config';
import { SecretBox } from '@gw/common';
import {
  AuditEntryEntity,
  AuditRepository,
  ENTITIES,
  ProviderEntity,
  SettingEntity,
  SettingsRepository,
  resolveDatabaseUrl,
  startEmbeddedPostgres,
} from '@gw/db';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { DataSource } from 'typeorm';
import { ProviderRepository } from './provider.repository';

export interface RotateOptions {
  cfg: AppConfig;
  /** The new 32-byte key, base64 or hex. */
  newKey: string;
  log?: (line: string) => void;
}

export interface RotateResult {
  fromKeyId: string;
  toKeyId: string;
  /** Credentials re-sealed by this run. */
  resealed: number;
  /** Credentials already sealed with the new key (a re-run), left alone. */
  alreadyNew: number;
  /** Set when the key lives in `${DATA_DIR}/master.key`, which now holds the new key. */
  keyFile?: string;
}

function currentKey(cfg: AppConfig): { key: Buffer; file?: string } {
  if (cfg.masterKey) {
    const key = decodeKey(cfg.masterKey);
    if (!key) throw new Error('MASTER_KEY must be 32 bytes, base64 or hex encoded');
    return { key };
  }
  const file = resolve(cfg.dataDir, 'master.key');
  if (!existsSync(file)) throw new Error(`No current master key: MASTER_KEY is not set and ${file} does not exist.`);
  const key = decodeKey(readFileSync(file, 'utf8').trim());
  if (!key) throw new Error(`${file} does not hold a 32-byte base64 or hex key`);
  return { key, file };
}

/**
 * Re-seals every provider credential from the current master key (MASTER_KEY, else
 * `${DATA_DIR}/master.key`) to `newKey`, in one transaction: either every credential moves or none.
 * With a key file, the new key is staged beside it first and moved over it only after the commit, so
 * no moment leaves sealed credentials that no key on disk can open. Processes still running with the
 * old key cannot read the new ciphertext: stop them first and restart them with the new key.
 */
export async function rotateMasterKey(opts: RotateOptions): Promise<RotateResult> {
  const log = opts.log ?? (() => undefined);
  const { cfg } = opts;
  const toRaw = decodeKey(opts.newKey.trim());
  if (!toRaw) throw new Error('The new master key must be 32 bytes, base64 or hex encoded (e.g. `openssl rand -base64 32`).');
  const current = currentKey(cfg);
  const from = new SecretBox(current.key);
  const to = new SecretBox(toRaw);
  if (from.keyId === to.keyId) throw new Error(`The new key is the current key (${from.keyId}).`);

  const staged = current.file ? `${current.file}.new` : undefined;
  const ds = new DataSource({ type: 'postgres', url: await resolveDatabaseUrl(cfg), entities: ENTITIES, synchronize: false, migrationsRun: false });
  await ds.initialize();
  try {
    if (staged) writeFileSync(staged, toRaw.toString('base64') + '\n', { mode: 0o600 });
    const counts = await ds.transaction(async (m) => {
      // The repositories, bound to this transaction.
      const providers = new ProviderRepository(m.getRepository(ProviderEntity));
      const settings = new SettingsRepository(m.getRepository(SettingEntity));
      const audit = new AuditRepository(m.getRepository(AuditEntryEntity));
      const rows = await providers.lockSealedCredentials();
      let resealed = 0;
      let alreadyNew = 0;
      for (const r of rows) {
        if (r.credentialEnc.split(':')[1] === to.keyId) {
          alreadyNew++;
          continue;
        }
        let plain: string;
        try {
          plain = from.open(r.credentialEnc);
        } catch (e) {
          // Never print the sealed value; the provider's name and the reason are enough to act on.
          throw new Error(`provider "${r.name}": ${(e as Error).message}; nothing was changed`);
        }
        await providers.setSealedCredential(r.id, to.seal(plain));
        resealed++;
      }
      // Running processes reload providers (and, holding the old key, say loudly that they cannot read them).
      await settings.bumpConfigVersion();
      if (await audit.exists()) {
        await audit.append({
          actorRole: 'system',
          action: 'master_key.rotate',
          objectType: 'master_key',
          objectId: to.keyId,
          before: { keyId: from.keyId },
          after: { keyId: to.keyId, resealed, alreadyNew },
        });
      }
      return { resealed, alreadyNew };
    });
    if (staged && current.file) renameSync(staged, current.file);
    log(
      `re-sealed ${counts.resealed} provider credential(s) from master key ${from.keyId} to ${to.keyId}` +
        (counts.alreadyNew ? ` (${counts.alreadyNew} already on ${to.keyId})` : ''),
    );
    return { fromKeyId: from.keyId, toKeyId: to.keyId, ...counts, keyFile: current.file };
  } catch (e) {
    if (staged) rmSync(staged, { force: true });
    throw e;
  } finally {
    await ds.destroy();
  }
}

const USAGE = `Usage: npm run rotate-master-key -- --new <base64|hex key>   (or --generate, or NEW_MASTER_KEY=…)

Re-seals every provider credential with a new master key, in one transaction.
Reads the current key from MASTER_KEY, else \${DATA_DIR}/master.key; the database from DATABASE_URL,
else the embedded PGlite in \${DATA_DIR}/pg. Stop the gateway and admin processes first.`;

export function parseRotateArgs(argv: string[], env: Record<string, string | undefined>): { newKey?: string; generated: boolean; help: boolean } {
  let newKey = env.NEW_MASTER_KEY?.trim() || undefined;
  let generated = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') help = true;
    else if (a === '--generate') {
      newKey = randomBytes(32).toString('base64');
      generated = true;
    } else if (a === '--new') newKey = argv[++i];
    else if (a.startsWith('--new=')) newKey = a.slice('--new='.length);
    else throw new Error(`unknown argument "${a}"\n\n${USAGE}`);
  }
  return { newKey, generated, help };
}

async function main(): Promise<void> {
  const args = parseRotateArgs(process.argv.slice(2), process.env);
  if (args.help || !args.newKey) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(args.help ? 0 : 2);
  }
  const cfg = parseConfig();
  const out = (line: string) => process.stdout.write(`${line}\n`);
  try {
    const r = await rotateMasterKey({ cfg, newKey: args.newKey, log: out });
    if (r.keyFile) {
      out(`${r.keyFile} now holds the new key (${r.toKeyId}). Back it up; start the processes again.`);
    } else {
      // Only shown when generated here: a key the operator passed in is already theirs.
      if (args.generated) out(`New key (shown once):\n\n    MASTER_KEY=${args.newKey}\n`);
      out(`Set MASTER_KEY to the new key (${r.toKeyId}) everywhere, then start the processes again.`);
    }
  } finally {
    // A one-shot tool keeps the embedded database in its own process (resolveDatabaseUrl): it serves no
    // request while it runs and leaves no child behind; the app must be stopped anyway (one writer per data dir).
    if (!cfg.databaseUrl) await (await startEmbeddedPostgres(cfg.dataDir)).stop();
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`rotate-master-key: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
