import { CatalogHit, ConditionalCard, EntryIndex, PriceCatalog, matches, searchOrder, toCards } from './price.catalog';
import { PRICE_SUPPLEMENT, PriceSupplement, SupplementModel } from './prices.supplement';

interface Entry {
  model: SupplementModel;
  cards?: ConditionalCard[];
}

/** Tier names that are the standard price. */
const STANDARD_TIERS = new Set(['default', 'auto', 'standard']);

export interface TierPrice {
  multiplier: number;
  source: string;
}

/**
 * The repo's supplement (prices.supplement.ts) as a catalog: own entries, and aliases resolved against
 * the supplement first, then `next` (the package catalog). Also answers service-tier multipliers.
 */
export class SupplementCatalog implements PriceCatalog {
  readonly label: string;
  private readonly indexes = new Map<string, EntryIndex<Entry>>();

  constructor(
    private readonly data: PriceSupplement = PRICE_SUPPLEMENT,
    private readonly next?: PriceCatalog,
  ) {
    this.label = `prices.supplement@${data.version}`;
    for (const [provider, models] of Object.entries(data.providers)) {
      const idx = new EntryIndex<Entry>();
      for (const model of models) {
        const cards = toCards(model.prices);
        // A broken entry fails the start, not a request.
        if (!cards && !model.alias_of) throw new Error(`price supplement: ${provider}:${model.id} has neither per-token prices nor alias_of`);
        idx.add(model.match, { model, cards });
      }
      this.indexes.set(provider, idx);
    }
  }

  lookup(model: string, kind?: string): CatalogHit | undefined {
    for (const step of searchOrder(model, kind)) {
      const found = this.indexes.get(step.provider)?.find(step.name);
      if (!found) continue;
      const e = found.entry;
      if (e.cards) {
        const match = found.match === 'exact' && step.vendor ? 'vendor' : found.match;
        return { source: 'supplement', entry: `${step.provider}:${e.model.id}`, match, cards: e.cards, note: e.model.note };
      }
      const target = this.own(e.model.alias_of!, step.provider) ?? this.next?.lookup(e.model.alias_of!, step.provider);
      if (!target) return undefined;
      return { source: 'supplement', entry: `${e.model.id} → ${target.entry}`, match: 'alias', cards: target.cards, note: e.model.note };
    }
    return undefined;
  }

  /**
   * The multiplier for a `service_tier`: 1 for the standard tier and for provider kinds that do not bill by
   * tier; undefined for a tier the supplement does not know (the table then charges standard and says so).
   */
  serviceTier(model: string, tier: string | null | undefined, kind?: string): TierPrice | undefined {
    const t = tier?.toLowerCase();
    if (!t || STANDARD_TIERS.has(t)) return { multiplier: 1, source: 'standard' };
    if (kind !== undefined && !this.data.service_tier_kinds.includes(kind))
      return { multiplier: 1, source: `provider kind ${kind} does not bill by service tier` };
    const rule = this.data.service_tiers[t];
    if (!rule) return undefined;
    const bare = model.slice(model.lastIndexOf('/') + 1);
    const specific = rule.models?.find((m) => matches(m.match, bare));
    return specific ? { multiplier: specific.multiplier, source: specific.source } : { multiplier: rule.multiplier, source: rule.source };
  }

  private own(model: string, provider: string): CatalogHit | undefined {
    const found = this.indexes.get(provider)?.find(model);
    if (!found?.entry.cards) return undefined;
    return { source: 'supplement', entry: `${provider}:${found.entry.model.id}`, match: found.match, cards: found.entry.cards };
  }
}
