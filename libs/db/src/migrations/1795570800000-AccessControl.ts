import { MigrationInterface, QueryRunner } from 'typeorm';

/** Issue 8: admin tokens with roles, the audit log, and the root-granted tenant-routes flag. */
export class AccessControl1795570800000 implements MigrationInterface {
  name = 'AccessControl1795570800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenants ADD COLUMN allow_tenant_routes boolean NOT NULL DEFAULT false`);
    await q.query(`CREATE TABLE admin_tokens (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid REFERENCES tenants(id) ON DELETE CASCADE,
      role text NOT NULL CHECK (role IN ('root','admin','viewer')),
      name text NOT NULL,
      prefix text NOT NULL,
      token_hash text NOT NULL UNIQUE,
      expires_at timestamptz,
      revoked_at timestamptz,
      last_used_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      created_by uuid,
      -- root tokens span the instance; every other role belongs to exactly one tenant
      CONSTRAINT admin_tokens_scope_ck CHECK ((role = 'root') = (tenant_id IS NULL)))`);
    await q.query(`CREATE INDEX admin_tokens_tenant_idx ON admin_tokens (tenant_id)`);
    // No foreign keys: the history must outlive the tenants and tokens it names.
    await q.query(`CREATE TABLE audit_log (
      id bigserial PRIMARY KEY,
      at timestamptz NOT NULL DEFAULT now(),
      actor_token_id uuid,
      actor_prefix text,
      actor_role text NOT NULL,
      tenant_id uuid,
      action text NOT NULL,
      object_type text NOT NULL,
      object_id text,
      before jsonb,
      after jsonb,
      ip text,
      request_id text)`);
    await q.query(`CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, id)`);
    await q.query(`CREATE INDEX audit_log_at_idx ON audit_log (at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS audit_log`);
    await q.query(`DROP TABLE IF EXISTS admin_tokens`);
    await q.query(`ALTER TABLE tenants DROP COLUMN IF EXISTS allow_tenant_routes`);
  }
}
