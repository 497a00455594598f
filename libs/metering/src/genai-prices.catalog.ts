import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findProvider } from '@pydantic/genai-prices';
import { CatalogHit, EntryIndex, PriceCatalog, RawModel, searchOrder, toCards } from './price.catalog';

interface Entry {
  model: RawModel;
  cards: NonNullable<ReturnType<typeof toCards>>;
}

/** The installed package's version (its data is the snapshot shipped with that version). */
function packageVersion(): string {
  try {
    const main = require.resolve('@pydantic/genai-prices');
    return (JSON.parse(readFileSync(join(dirname(main), '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * The maintained catalog: @pydantic/genai-prices (MIT, https://github.com/pydantic/genai-prices), pinned
 * exactly in package.json. Only the data shipped in the package is used, never its auto-update: nothing
 * here reaches the network. A provider's entries are indexed on first use (one map per provider).
 */
export class GenaiPricesCatalog implements PriceCatalog {
  readonly label = `@pydantic/genai-prices@${packageVersion()}`;
  private readonly indexes = new Map<string, EntryIndex<Entry> | null>();

  lookup(model: string, kind?: string): CatalogHit | undefined {
    for (const step of searchOrder(model, kind)) {
      const found = this.index(step.provider)?.find(step.name);
      if (!found) continue;
      const match = found.match === 'exact' && step.vendor ? 'vendor' : found.match;
      return { source: 'catalog', entry: `${step.provider}:${found.entry.model.id}`, match, cards: found.entry.cards };
    }
    return undefined;
  }

  private index(providerId: string): EntryIndex<Entry> | null {
    let idx = this.indexes.get(providerId);
    if (idx !== undefined) return idx;
    const provider = findProvider({ providerId });
    idx = provider ? new EntryIndex<Entry>() : null;
    for (const m of provider?.models ?? []) {
      const cards = toCards(m.prices);
      if (cards) idx!.add(m.match, { model: m, cards });
    }
    this.indexes.set(providerId, idx);
    return idx;
  }
}
