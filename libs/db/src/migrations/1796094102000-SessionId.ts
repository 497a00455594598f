import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The client's session (Codex's `session-id` header, else the body's `prompt_cache_key`): usage grouped by
 * session. Client-chosen, so never a key: bounded and charset-checked before it is written. Indexed within a
 * tenant and time, the only way reports read it.
 */
export class SessionId1796094102000 implements MigrationInterface {
  name = 'SessionId1796094102000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE usage_records ADD COLUMN session_id text`);
    await q.query(`CREATE INDEX usage_records_tenant_session_idx ON usage_records (tenant_id, session_id, started_at) WHERE session_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS usage_records_tenant_session_idx`);
    await q.query(`ALTER TABLE usage_records DROP COLUMN IF EXISTS session_id`);
  }
}
