import { Injectable } from '@nestjs/common';
import { Errors } from '@gw/common';
import { ChangeFeed, PriceEntity } from '@gw/db';
import { PriceRepository } from './price.repository';

export interface PriceInput {
  modelPattern: string;
  inputPerM: number;
  outputPerM: number;
  cachedInputPerM?: number | null;
}

@Injectable()
export class PriceService {
  constructor(
    private readonly prices: PriceRepository,
    private readonly changes: ChangeFeed,
  ) {}

  list(): Promise<PriceEntity[]> {
    return this.prices.list();
  }

  async get(id: string): Promise<PriceEntity> {
    const p = await this.prices.get(id);
    if (!p) throw Errors.notFound(`No price with id ${id}.`, 'price_not_found');
    return p;
  }

  async create(input: PriceInput): Promise<PriceEntity> {
    if (await this.prices.findByPattern(input.modelPattern)) {
      throw Errors.conflict(`A price for "${input.modelPattern}" already exists.`, 'modelPattern');
    }
    const p = await this.prices.create({ ...input, cachedInputPerM: input.cachedInputPerM ?? null });
    await this.changes.bump();
    return p;
  }

  async update(id: string, patch: Partial<PriceInput>): Promise<PriceEntity> {
    await this.get(id);
    const p = await this.prices.update(id, patch);
    await this.changes.bump();
    return p ?? this.get(id);
  }

  async delete(id: string): Promise<void> {
    if (!(await this.prices.delete(id))) throw Errors.notFound(`No price with id ${id}.`, 'price_not_found');
    await this.changes.bump();
  }
}
