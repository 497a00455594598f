import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { SettingEntity } from './entities';

/** The `settings` key/value table, and the `config_version` row the change feed bumps and polls. */
@Injectable()
export class SettingsRepository {
  constructor(@InjectRepository(SettingEntity) private readonly repo: Repository<SettingEntity>) {}

  async get(key: string): Promise<string | undefined> {
    return (await this.repo.findOne({ where: { key } }))?.value;
  }

  async set(key: string, value: string): Promise<void> {
    await this.repo.upsert({ key, value }, ['key']);
  }

  /** Sets the value only if the key is absent; returns whether it was set. */
  async setIfAbsent(key: string, value: string): Promise<boolean> {
    const rows: unknown[] = await this.repo.query(`INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING key`, [key, value]);
    return rows.length > 0;
  }

  /** Admin data changed: increments `config_version`, resolving to the new value (undefined without that row). */
  async bumpConfigVersion(): Promise<string | undefined> {
    const out: unknown[] = await this.repo.query(
      `UPDATE settings SET value = (value::bigint + 1)::text, updated_at = now() WHERE key = 'config_version' RETURNING value`,
    );
    // TypeORM's Postgres driver answers an UPDATE with [rows, affected count], not the rows.
    const rows = (Array.isArray(out[0]) ? out[0] : out) as { value: string }[];
    return rows[0]?.value;
  }

  /** One indexed read of `config_version` (the change feed's poll). */
  async configVersion(): Promise<string | undefined> {
    const rows: { value: string }[] = await this.repo.query(`SELECT value FROM settings WHERE key = 'config_version'`);
    return rows[0]?.value;
  }
}
