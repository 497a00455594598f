import { MigrationInterface, QueryRunner } from 'typeorm';

/** The rows the initial migration seeded, as it seeded them. */
const SEEDED: [string, number, number, number | null][] = [
  ['gpt-4o', 2.5, 10, 1.25],
  ['gpt-4o-2024-*', 2.5, 10, 1.25],
  ['gpt-4o-mini*', 0.15, 0.6, 0.075],
  ['gpt-4.1', 2, 8, 0.5],
  ['gpt-4.1-mini*', 0.4, 1.6, 0.1],
  ['gpt-4.1-nano*', 0.1, 0.4, 0.025],
  ['gpt-5', 1.25, 10, 0.125],
  ['gpt-5-mini*', 0.25, 2, 0.025],
  ['gpt-5-nano*', 0.05, 0.4, 0.005],
  ['gpt-5-codex*', 1.25, 10, 0.125],
  ['o3', 2, 8, 0.5],
  ['o4-mini*', 1.1, 4.4, 0.275],
  ['text-embedding-3-small', 0.02, 0, null],
  ['text-embedding-3-large', 0.13, 0, null],
];

/**
 * Prices now come from the maintained catalog (@pydantic/genai-prices + the repo's supplement); the prices
 * table holds admin overrides only, which win over the catalog. The rows seeded at install would otherwise
 * shadow the catalog forever (and their globs mispriced models, e.g. gpt-4o-2024-05-13 at gpt-4o's rate), so
 * the ones still holding their seeded values are removed; the catalog prices each of those models at the
 * same list price. Rows an admin changed or added stay.
 */
export class CatalogPrices1796083316498 implements MigrationInterface {
  name = 'CatalogPrices1796083316498';

  async up(q: QueryRunner): Promise<void> {
    for (const [pattern, input, output, cached] of SEEDED) {
      await q.query(
        `DELETE FROM prices WHERE model_pattern = $1 AND input_per_m = $2 AND output_per_m = $3 AND cached_input_per_m IS NOT DISTINCT FROM $4::numeric`,
        [pattern, input, output, cached],
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    for (const [pattern, input, output, cached] of SEEDED) {
      await q.query(
        `INSERT INTO prices (model_pattern, input_per_m, output_per_m, cached_input_per_m) VALUES ($1, $2, $3, $4) ON CONFLICT (model_pattern) DO NOTHING`,
        [pattern, input, output, cached],
      );
    }
  }
}
