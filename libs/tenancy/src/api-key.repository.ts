import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { ApiKeyEntity } from '@gw/db';
import { In, Repository } from 'typeorm';

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

  /** Cache loading (all tenants): the gateway's key cache is the one reader that spans tenants. */
  listAllActive(): Promise<ApiKeyEntity[]> {
    return this.repo.createQueryBuilder('k').where('k.revoked_at IS NULL').getMany();
  }
  findActiveByHash(keyHash: string): Promise<ApiKeyEntity | null> {
    return this.repo.createQueryBuilder('k').where('k.key_hash = :keyHash AND k.revoked_at IS NULL', { keyHash }).getOne();
  }
  async touch(keyIds: string[]): Promise<void> {
    if (keyIds.length) await this.repo.update({ id: In(keyIds) }, { lastUsedAt: new Date() });
  }
}
