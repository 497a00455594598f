import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { ProviderEntity } from '@gw/db';
import { Repository } from 'typeorm';

/** Providers are instance-wide (root admin only), hence no tenant id here. */
@Injectable()
export class ProviderRepository {
  constructor(@InjectRepository(ProviderEntity) private readonly repo: Repository<ProviderEntity>) {}

  list(): Promise<ProviderEntity[]> {
    return this.repo.find({ order: { createdAt: 'ASC' } });
  }
  get(id: string): Promise<ProviderEntity | null> {
    return this.repo.findOne({ where: { id } });
  }
  findByName(name: string): Promise<ProviderEntity | null> {
    return this.repo.findOne({ where: { name } });
  }
  save(data: Partial<ProviderEntity>): Promise<ProviderEntity> {
    return this.repo.save(this.repo.create(data));
  }
  async update(id: string, patch: Partial<ProviderEntity>): Promise<ProviderEntity | null> {
    // An empty patch (PATCH {}) changes nothing; TypeORM refuses an UPDATE without values.
    if (Object.keys(patch).length) await this.repo.update({ id }, patch as Parameters<Repository<ProviderEntity>['update']>[1]);
    return this.get(id);
  }
  async delete(id: string): Promise<boolean> {
    return ((await this.repo.delete({ id })).affected ?? 0) > 0;
  }
}
