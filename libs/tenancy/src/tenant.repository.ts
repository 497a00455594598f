import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { TenantEntity } from '@gw/db';
import { Repository } from 'typeorm';

@Injectable()
export class TenantRepository {
  constructor(@InjectRepository(TenantEntity) private readonly repo: Repository<TenantEntity>) {}

  list(): Promise<TenantEntity[]> {
    return this.repo.find({ order: { createdAt: 'ASC' } });
  }
  get(tenantId: string): Promise<TenantEntity | null> {
    return this.repo.findOne({ where: { id: tenantId } });
  }
  findByName(name: string): Promise<TenantEntity | null> {
    return this.repo.findOne({ where: { name } });
  }
  create(data: Partial<TenantEntity>): Promise<TenantEntity> {
    return this.repo.save(this.repo.create(data));
  }
  async update(tenantId: string, patch: Partial<TenantEntity>): Promise<TenantEntity | null> {
    // An empty patch (PATCH {}) changes nothing; TypeORM refuses an UPDATE without values.
    if (Object.keys(patch).length) await this.repo.update({ id: tenantId }, patch);
    return this.get(tenantId);
  }
  async delete(tenantId: string): Promise<boolean> {
    return ((await this.repo.delete({ id: tenantId })).affected ?? 0) > 0;
  }
}
