import { PriceEntity } from '@gw/db';
import { MediumDatabase, mediumDatabase } from '@gw/testing';
import { PriceRepository } from './price.repository';

// Starting a PGlite copy takes seconds on a loaded machine.
jest.setTimeout(60_000);

describe('PriceRepository on a real database', () => {
  let db: MediumDatabase;
  let prices: PriceRepository;

  beforeAll(async () => {
    db = await mediumDatabase();
    prices = new PriceRepository(db.dataSource.getRepository(PriceEntity));
  });
  afterAll(() => db?.close());

  it('one override per pattern, listed by pattern; numerics come back as numbers; an empty patch changes nothing', async () => {
    const p = await prices.create({ modelPattern: 'gpt-4o', inputPerM: 1.5, outputPerM: 3, cachedInputPerM: null });
    await prices.create({ modelPattern: 'claude-*', inputPerM: 3, outputPerM: 15, cachedInputPerM: 0.3 });
    await expect(prices.create({ modelPattern: 'gpt-4o', inputPerM: 1, outputPerM: 1 })).rejects.toMatchObject({ code: '23505' });
    expect((await prices.list()).map((r) => r.modelPattern)).toEqual(['claude-*', 'gpt-4o']);
    expect(await prices.findByPattern('gpt-4o')).toMatchObject({ inputPerM: 1.5, outputPerM: 3, cachedInputPerM: null });
    expect((await prices.update(p.id, {}))?.outputPerM).toBe(3);
    expect((await prices.update(p.id, { outputPerM: 4 }))?.outputPerM).toBe(4);
    expect(await prices.delete(p.id)).toBe(true);
    expect(await prices.delete(p.id)).toBe(false);
    expect(await prices.get(p.id)).toBeNull();
  });
});
