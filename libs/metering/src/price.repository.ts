import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { PriceEntity } from '@gw/db';
import { Repository } from 'typeorm';

/** Admin price overrides (`prices`). Instance-wide (root admin only), hence no tenant id here. */
@Injectable()
export class PriceRepository {
  constructor(@InjectRepository(PriceEntity) private readonly repo: Repository<PriceEntity>) {}

  list(): Promise<PriceEntity[]> {
    return this.repo.find({ order: { modelPattern: 'ASC' } });
  }
  get(id: string): Promise<PriceEntity | null> {
    return this.repo.findOne({ where: { id } });
  }
  findByPattern(modelPattern: string): Promise<PriceEntity | null> {
    return this.repo.findOne({ where: { modelPattern } });
  }
  create(data: Partial<PriceEntity>): Promise<PriceEntity> {
    return this.repo.save(this.repo.create(data));
  }
  async update(id: string, patch: Partial<PriceEntity>): Promise<PriceEntity | null> {
    // An empty patch (PATCH {}) changes nothing; TypeORM refuses an UPDATE without values.
    if (Object.keys(patch).length) await this.repo.update({ id }, patch);
    return this.get(id);
  }
  async delete(id: string): Promise<boolean> {
    return ((await this.repo.delete({ id })).affected ?? 0) > 0;
  }
}
