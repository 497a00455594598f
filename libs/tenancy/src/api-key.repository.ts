import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { ApiKeyEntity, LimitSettings } from '@gw/db';
import { PoolClient, Query } from 'pg';
import { In, Repository } from 'typeorm';

const ACTIVE_KEYS_SQL = `SELECT k.id, k.tenant_id, k.name, k.prefix, k.key_hash, k.allowed_models, k.allowed_ips, k.limits, k.expires_at,
       t.name AS tenant_name, t.limits AS tenant_limits
  FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
 WHERE k.revoked_at IS NULL AND t.enabled`;

/** One row of the key cache's load (`forEachActive`): a usable key and what the gateway needs of its tenant. */
export interface ActiveKeyRow {
  id: string;
  tenant_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  allowed_models: string[] | null;
  allowed_ips: string[] | null;
  limits: LimitSettings | null;
  expires_at: Date | null;
  tenant_name: string;
  tenant_limits: LimitSettings | null;
}

/** Every call that reads or changes a key takes the tenant id first: no cross-tenant access by construction. */
@Injectable()
export class ApiKeyRepository {
  constructor(@InjectRepository(ApiKeyEntity) private readonly repo: Repository<ApiKeyEntity>) {}

  list(tenantId: string): Promise<ApiKeyEntity[]> {
    return this.repo.find({ where: { tenantId }, order: { createdAt: 'ASC' } });
  }
  get(tenantId: string, keyId: string): Promise<ApiKeyEntity | null> {
    return this.repo.findOne({ where: { tenantId, id: keyId } });
  }
  create(tenantId: string, data: Partial<ApiKeyEntity>): Promise<ApiKeyEntity> {
    return this.repo.save(this.repo.create({ ...data, tenantId }));
  }
  async update(tenantId: string, keyId: string, patch: Partial<ApiKeyEntity>): Promise<ApiKeyEntity | null> {
    // An empty patch (PATCH {}) changes nothing; TypeORM refuses an UPDATE without values.
    if (Object.keys(patch).length) await this.repo.update({ tenantId, id: keyId }, patch);
    return this.get(tenantId, keyId);
  }
  async delete(tenantId: string, keyId: string): Promise<boolean> {
    return ((await this.repo.delete({ tenantId, id: keyId })).affected ?? 0) > 0;
  }

  /**
   * Cache loading (all tenants): the gateway's key cache is the one reader that spans tenants. Every usable key
   * (not revoked, tenant enabled; expired ones too, so they can be refused as expired) with its tenant, in one
   * query whose rows are handed to `onRow` as they arrive: one snapshot, and at 100k keys the result is never
   * held whole (pg does not accumulate rows when a `row` listener takes them). A plain query, not a cursor: a
   * transaction on the embedded PGlite would stall every other connection's statements until it ends.
   */
  async forEachActive(onRow: (row: ActiveKeyRow) => void): Promise<void> {
    const qr = this.repo.manager.dataSource.createQueryRunner();
    const client = (await qr.connect()) as PoolClient;
    try {
      await new Promise<void>((resolve, reject) => {
        let failed: unknown;
        const q = new Query(ACTIVE_KEYS_SQL);
        q.on('row', (r: ActiveKeyRow) => {
          if (failed === undefined) {
            try {
              onRow(r);
            } catch (e) {
              failed = e;
            }
          }
        });
        q.on('error', reject);
        q.on('end', () => (failed === undefined ? resolve() : reject(failed as Error)));
        void client.query(q);
      });
    } finally {
      await qr.release();
    }
  }
  async touch(keyIds: string[]): Promise<void> {
    if (keyIds.length) await this.repo.update({ id: In(keyIds) }, { lastUsedAt: new Date() });
  }
}
