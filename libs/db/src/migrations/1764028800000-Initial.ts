import { MigrationInterface, QueryRunner } from 'typeorm';

export class Initial1764028800000 implements MigrationInterface {
  name = 'Initial1764028800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE tenants (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name text NOT NULL UNIQUE,
      limits jsonb NOT NULL DEFAULT '{}',
      enabled boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now())`);
    await q.query(`CREATE TABLE api_keys (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
      name text NOT NULL,
      prefix text NOT NULL,
      key_hash text NOT NULL UNIQUE,
      allowed_models text[],
      allowed_ips text[],
      limits jsonb NOT NULL DEFAULT '{}',
      expires_at timestamptz,
      revoked_at timestamptz,
      last_used_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now())`);
    await q.query(`CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id)`);
    await q.query(`CREATE TABLE providers (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name text NOT NULL UNIQUE,
      kind text NOT NULL CHECK (kind IN ('openai','openrouter','ollama')),
      base_url text NOT NULL,
      credential_enc text,
      settings jsonb NOT NULL DEFAULT '{}',
      enabled boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now())`);
    await q.query(`CREATE TABLE routes (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id uuid REFERENCES tenants(id) ON DELETE CASCADE,
      model_pattern text NOT NULL,
      targets jsonb NOT NULL,
      settings jsonb NOT NULL DEFAULT '{}',
      enabled boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now())`);
    // One route per pattern per scope; NULL tenant (global) needs its own partial index.
    await q.query(`CREATE UNIQUE INDEX routes_tenant_pattern_uq ON routes (tenant_id, model_pattern) WHERE tenant_id IS NOT NULL`);
    await q.query(`CREATE UNIQUE INDEX routes_global_pattern_uq ON routes (model_pattern) WHERE tenant_id IS NULL`);
    await q.query(`CREATE TABLE prices (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      model_pattern text NOT NULL UNIQUE,
      input_per_m numeric NOT NULL,
      output_per_m numeric NOT NULL,
      cached_input_per_m numeric,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now())`);
    // No foreign keys on the ledger: usage must survive deleting the tenant, key or provider it names.
    await q.query(`CREATE TABLE usage_records (
      request_id text PRIMARY KEY,
      tenant_id uuid NOT NULL,
      key_id uuid,
      route_id uuid,
      provider_id uuid,
      endpoint text NOT NULL,
      requested_model text,
      upstream_model text,
      status int NOT NULL,
      error_code text,
      input_tokens int NOT NULL DEFAULT 0,
      output_tokens int NOT NULL DEFAULT 0,
      cached_tokens int NOT NULL DEFAULT 0,
      cost_usd numeric(18,8) NOT NULL DEFAULT 0,
      latency_ms int,
      ttfb_ms int,
      streamed boolean NOT NULL DEFAULT false,
      attempts int NOT NULL DEFAULT 1,
      started_at timestamptz NOT NULL,
      finished_at timestamptz NOT NULL)`);
    await q.query(`CREATE INDEX usage_tenant_time_idx ON usage_records (tenant_id, started_at)`);
    await q.query(`CREATE INDEX usage_time_idx ON usage_records (started_at)`);
    await q.query(`CREATE INDEX usage_key_time_idx ON usage_records (key_id, started_at)`);
    await q.query(`CREATE TABLE settings (
      key text PRIMARY KEY,
      value text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now())`);
    await q.query(`INSERT INTO settings (key, value) VALUES ('config_version', '1')`);
    // Current public list prices (USD per 1M tokens) of common OpenAI models; editable via the admin API.
    await q.query(`INSERT INTO prices (model_pattern, input_per_m, output_per_m, cached_input_per_m) VALUES
      ('gpt-4o', 2.5, 10, 1.25),
      ('gpt-4o-2024-*', 2.5, 10, 1.25),
      ('gpt-4o-mini*', 0.15, 0.6, 0.075),
      ('gpt-4.1', 2, 8, 0.5),
      ('gpt-4.1-mini*', 0.4, 1.6, 0.1),
      ('gpt-4.1-nano*', 0.1, 0.4, 0.025),
      ('gpt-5', 1.25, 10, 0.125),
      ('gpt-5-mini*', 0.25, 2, 0.025),
      ('gpt-5-nano*', 0.05, 0.4, 0.005),
      ('gpt-5-codex*', 1.25, 10, 0.125),
      ('o3', 2, 8, 0.5),
      ('o4-mini*', 1.1, 4.4, 0.275),
      ('text-embedding-3-small', 0.02, 0, NULL),
      ('text-embedding-3-large', 0.13, 0, NULL)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['settings', 'usage_records', 'prices', 'routes', 'providers', 'api_keys', 'tenants']) {
      await q.query(`DROP TABLE IF EXISTS ${t}`);
    }
  }
}
