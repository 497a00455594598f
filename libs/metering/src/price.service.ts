import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Errors } from '@gw/common';
import { ChangeFeed, PriceEntity } from '@gw/db';
import { Repository } from 'typeorm';

export interface PriceInput {
  modelPattern: string;
  inputPerM: number;
  outputPerM: number;
  cachedInputPerM?: number | null;
}

@Injectable()
export class PriceService {
  constructor(
    @InjectRepository(PriceEntity) private readonly repo: Repository<PriceEntity>,
    private readonly changes: ChangeFeed,
  ) {}

  list(): Promise<PriceEntity[]> {
    return this.repo.find({ order: { modelPattern: 'ASC' } });
  }

  async get(id: string): Promise<PriceEntity> {
    const p = await this.repo.findOne({ where: { id } });
    if (!p) throw Errors.notFound(`No price with id ${id}.`, 'price_not_found');
    return p;
  }

  async create(input: PriceInput): Promise<PriceEntity> {
    if (await this.repo.findOne({ where: { modelPattern: input.modelPattern } })) {
      throw Errors.conflict(`A price for "${input.modelPattern}" already exists.`, 'modelPattern');
    }
    const p = await this.repo.save(this.repo.create({ ...input, cachedInputPerM: input.cachedInputPerM ?? null }));
    await this.changes.bump();
    return p;
  }

  async update(id: string, patch: Partial<PriceInput>): Promise<PriceEntity> {
    await this.get(id);
    // An empty patch (PATCH {}) changes nothing; TypeORM refuses an UPDATE without values.
    if (Object.keys(patch).length) await this.repo.update({ id }, patch);
    await this.changes.bump();
    return this.get(id);
  }

  async delete(id: string): Promise<void> {
    if (((await this.repo.delete({ id })).affected ?? 0) === 0) throw Errors.notFound(`No price with id ${id}.`, 'price_not_found');
    await this.changes.bump();
  }
}
