import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The ledger's `request_id` is always the gateway's own id; the id a client sent in `x-request-id` (which it
 * chooses, so it can repeat or collide) is kept beside it, for tracing only. No index: looked up rarely, by
 * hand, within a tenant and a time range.
 */
export class ClientRequestId1795573700000 implements MigrationInterface {
  name = 'ClientRequestId1795573700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE usage_records ADD COLUMN client_request_id text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE usage_records DROP COLUMN IF EXISTS client_request_id`);
  }
}
