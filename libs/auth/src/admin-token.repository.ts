import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { AdminTokenEntity } from '@gw/db';
import { Repository } from 'typeorm';

/**
 * Tenant id first, as everywhere: `null` means "any tenant" and is only passed for root callers.
 * The one cross-tenant reader is `findByHash`, for authentication.
 */
@Injectable()
export class AdminTokenRepository {
  constructor(@InjectRepository(AdminTokenEntity) private readonly repo: Repository<AdminTokenEntity>) {}

  list(tenantId: string | null): Promise<AdminTokenEntity[]> {
    return this.repo.find({ where: tenantId === null ? {} : { tenantId }, order: { createdAt: 'ASC' } });
  }
  get(tenantId: string | null, id: string): Promise<AdminTokenEntity | null> {
    return this.repo.findOne({ where: tenantId === null ? { id } : { tenantId, id } });
  }
  create(tenantId: string | null, data: Partial<AdminTokenEntity>): Promise<AdminTokenEntity> {
    return this.repo.save(this.repo.create({ ...data, tenantId }));
  }
  async revoke(tenantId: string | null, id: string): Promise<AdminTokenEntity | null> {
    await this.repo
      .createQueryBuilder()
      .update()
      .set({ revokedAt: () => 'now()' })
      .where(tenantId === null ? 'id = :id' : 'id = :id AND tenant_id = :tenantId', { id, tenantId })
      .andWhere('revoked_at IS NULL')
      .execute();
    return this.get(tenantId, id);
  }
  async delete(tenantId: string | null, id: string): Promise<boolean> {
    return ((await this.repo.delete(tenantId === null ? { id } : { tenantId, id })).affected ?? 0) > 0;
  }

  /** Authentication: the token is not yet known to belong to any tenant. */
  findByHash(tokenHash: string): Promise<AdminTokenEntity | null> {
    return this.repo.findOne({ where: { tokenHash } });
  }
  async touch(id: string): Promise<void> {
    await this.repo.update({ id }, { lastUsedAt: new Date() });
  }
}
