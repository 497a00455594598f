import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { ApiKeyEntity, LimitSettings } from '@gw/db';
import { In, Repository } from 'typeorm';

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
    await this.repo.update({ tenantId, id: keyId }, patch);
    return this.get(tenantId, keyId);
  }
  async delete(tenantId: string, keyId: string): Promise<boolean> {
    return ((await this.repo.delete({ tenantId, id: keyId })).affected ?? 0) > 0;
  }

  /**
   * Cache loading (all tenants): the gateway's key cache is the one reader that spans tenants. Every usable key
   * (not revoked, tenant enabled; expired ones too, so they can be refused as expired) with its tenant, as one
   * query read through a cursor `batchSize` rows at a time: one snapshot, and at 100k keys the rows in memory
   * at once are one batch, not the whole table as entities.
   */
  async forEachActive(onBatch: (rows: ActiveKeyRow[]) => void, batchSize = 5000): Promise<void> {
    const qr = this.repo.manager.connection.createQueryRunner();
    await qr.connect();
    try {
      await qr.startTransaction();
      await qr.query(
        `DECLARE gw_active_keys NO SCROLL CURSOR FOR
           SELECT k.id, k.tenant_id, k.name, k.prefix, k.key_hash, k.allowed_models, k.allowed_ips, k.limits, k.expires_at,
                  t.name AS tenant_name, t.limits AS tenant_limits
             FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
            WHERE k.revoked_at IS NULL AND t.enabled`,
      );
      for (;;) {
        const rows: ActiveKeyRow[] = await qr.query(`FETCH ${Math.max(1, Math.floor(batchSize))} FROM gw_active_keys`);
        if (rows.length) onBatch(rows);
        if (rows.length < batchSize) break;
      }
      await qr.commitTransaction();
    } catch (e) {
      if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
      throw e;
    } finally {
      await qr.release();
    }
  }
  async touch(keyIds: string[]): Promise<void> {
    if (keyIds.length) await this.repo.update({ id: In(keyIds) }, { lastUsedAt: new Date() });
  }
}
