/**
 * The price catalog: where a model's list price comes from, behind one small interface (`PriceCatalog`), so
 * that the table composing the sources (`PriceTable`: overrides > supplement > package catalog > policy) and
 * a later data-plane core need not know how each source stores its data.
 *
 * Rates follow @pydantic/genai-prices' data model (USD per 1M tokens; `{ base, tiers: [{ start, price }] }`
 * reprices the whole request once its input tokens exceed `start`; a list of prices with constraints, the
 * last one satisfied winning), so supplement entries can be sent upstream unchanged.
 */

/** USD per 1M tokens; a tier applies to the whole request once its input tokens exceed `start`. */
export interface TieredRate {
  base: number;
  tiers: readonly { start: number; price: number }[];
}
export type Rate = number | TieredRate;

/** One model's list prices at the standard service tier (USD per 1M tokens). */
export interface RateCard {
  input: Rate;
  /** Cached input (cache reads); absent: billed as input. */
  cachedInput?: Rate;
  /** Cache writes; absent: billed as input. */
  cacheWrite?: Rate;
  output: Rate;
}

/** A card valid from a date (announced price changes) or at a time of day; unconditional if `when` is absent. */
export interface ConditionalCard {
  when?: (at: Date) => boolean;
  card: RateCard;
}

/** Where a price came from; `provider` is a cost the provider reported itself (OpenRouter). */
export type PriceSource = 'override' | 'supplement' | 'catalog' | 'local' | 'fallback' | 'provider';

/**
 * How a model name met its entry:
 * - `exact`: the entry's id or a name it lists (`gpt-5.5-codex` is listed by the catalog's gpt-5.5 entry);
 * - `snapshot`: a dated snapshot matched by the entry's date pattern (`gpt-6-sol-2026-09-01`);
 * - `vendor`: an OpenRouter id (`openai/gpt-6.1-sol`) found under its vendor as `gpt-6.1-sol`;
 * - `alias`: the supplement prices it as another model, with its reason (`gpt-daybreak-blue-latest`);
 * - `prefix`: a prefix/contains rule of the catalog: a different model may be priced, so it is always reported;
 * - `glob`: an admin override pattern.
 */
export type MatchKind = 'exact' | 'snapshot' | 'vendor' | 'alias' | 'prefix' | 'glob';

export interface CatalogHit {
  source: PriceSource;
  /** The entry that priced it: catalog model id, supplement id (`a → b` for an alias), override pattern. */
  entry: string;
  match: MatchKind;
  /** Never empty; the last card whose condition holds wins (`cardAt`). */
  cards: ConditionalCard[];
  /** Why an alias or an assumption prices it so (supplement). */
  note?: string;
}

export interface PriceCatalog {
  /** Name and version for logs and docs, e.g. `@pydantic/genai-prices@0.1.8`. */
  readonly label: string;
  /** The entry pricing `model` as served by a provider of `kind` (openai, openrouter, …), if any. */
  lookup(model: string, kind?: string): CatalogHit | undefined;
}

/** The token counts a price applies to. `cachedTokens` and `cacheWriteTokens` are parts of `inputTokens`. */
export interface PricedUsage {
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  cacheWriteTokens?: number;
}

export function cardAt(cards: ConditionalCard[], at: Date): RateCard {
  for (let i = cards.length - 1; i >= 0; i--) {
    const c = cards[i];
    if (!c.when || c.when(at)) return c.card;
  }
  return cards[0].card;
}

/** USD per 1M tokens of `rate` for a request with `inputTokens` of input (long-context tiers). */
export function rateAt(rate: Rate, inputTokens: number): number {
  if (typeof rate === 'number') return rate;
  let price = rate.base;
  for (const t of rate.tiers) if (inputTokens > t.start) price = t.price;
  return price;
}

/** USD for `u` under `card`, every rate multiplied by `multiplier` (service tier). */
export function priceUsage(card: RateCard, u: PricedUsage, multiplier = 1): number {
  const input = Math.max(0, u.inputTokens);
  const cached = Math.min(Math.max(0, u.cachedTokens), input);
  const writes = Math.min(Math.max(0, u.cacheWriteTokens ?? 0), input - cached);
  const plain = input - cached - writes;
  const inRate = rateAt(card.input, input);
  const usd =
    plain * inRate +
    cached * (card.cachedInput === undefined ? inRate : rateAt(card.cachedInput, input)) +
    writes * (card.cacheWrite === undefined ? inRate : rateAt(card.cacheWrite, input)) +
    Math.max(0, u.outputTokens) * rateAt(card.output, input);
  return (usd * multiplier) / 1_000_000;
}

// ───────────────────────── the genai-prices data model, shared by the package and the supplement ─────────────────────────

export type MatchLogic =
  | { or: MatchLogic[] }
  | { and: MatchLogic[] }
  | { equals: string }
  | { starts_with: string }
  | { ends_with: string }
  | { contains: string }
  | { regex: string };

type RawRate = number | { base: number; tiers: { start: number; price: number }[] } | undefined;
export type RawModelPrice = Record<string, RawRate>;
export type RawConstraint = { type: 'start_date'; start_date: string } | { type: 'time_of_date'; start_time: string; end_time: string };
export type RawPrices = RawModelPrice | { constraint?: RawConstraint; prices: RawModelPrice }[];

export interface RawModel {
  id: string;
  match: MatchLogic;
  prices?: RawPrices;
}

function isRate(v: unknown): v is Rate {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0;
  if (!v || typeof v !== 'object') return false;
  const t = v as TieredRate;
  return (
    typeof t.base === 'number' &&
    t.base >= 0 &&
    Array.isArray(t.tiers) &&
    (t.tiers as Partial<Record<'start' | 'price', unknown>>[]).every((x) => typeof x.start === 'number' && typeof x.price === 'number' && x.price >= 0)
  );
}

/** A token rate card from genai-prices keys; undefined if the entry is not priced per token (images, requests…). */
export function toRateCard(p: RawModelPrice): RateCard | undefined {
  const input = p.input_mtok;
  const output = p.output_mtok;
  if (!isRate(input) && !isRate(output)) return undefined;
  const card: RateCard = { input: isRate(input) ? input : 0, output: isRate(output) ? output : 0 };
  if (isRate(p.cache_read_mtok)) card.cachedInput = p.cache_read_mtok;
  if (isRate(p.cache_write_mtok)) card.cacheWrite = p.cache_write_mtok;
  return card;
}

/** Seconds after UTC midnight of `HH:MM:SS[.fff](Z|±hh:mm)`, the package's time-of-day format. */
function secondsOfDay(s: string): number {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|([+-])(\d{2}):(\d{2}))$/.exec(s);
  if (!m) throw new Error(`invalid time of day "${s}"`);
  const local = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
  const offset = m[4] === 'Z' ? 0 : (m[5] === '+' ? 1 : -1) * (Number(m[6]) * 3600 + Number(m[7]) * 60);
  return (((local - offset) % 86400) + 86400) % 86400;
}

function condition(c: RawConstraint | undefined): ((at: Date) => boolean) | undefined {
  if (!c) return undefined;
  if (c.type === 'start_date') {
    const from = Date.parse(c.start_date);
    return (at) => at.getTime() >= from;
  }
  if (c.type === 'time_of_date') {
    const start = secondsOfDay(c.start_time);
    const end = secondsOfDay(c.end_time);
    return (at) => {
      const now = at.getUTCHours() * 3600 + at.getUTCMinutes() * 60 + at.getUTCSeconds();
      return end < start ? now >= start || now < end : now >= start && now < end;
    };
  }
  // An unknown constraint never applies: the unconditional price stands (the package would throw).
  return () => false;
}

/** Cards of an entry, or undefined when it has no per-token price. */
export function toCards(prices: RawPrices | undefined): ConditionalCard[] | undefined {
  if (!prices) return undefined;
  const list = Array.isArray(prices) ? prices : [{ prices }];
  const cards: ConditionalCard[] = [];
  for (const p of list) {
    const card = toRateCard(p.prices);
    if (!card) return undefined;
    const when = condition((p as { constraint?: RawConstraint }).constraint);
    cards.push(when ? { when, card } : { card });
  }
  return cards.length ? cards : undefined;
}

interface Rule {
  test: (name: string) => boolean;
  kind: 'snapshot' | 'prefix';
}

/**
 * An index over a provider's entries: names listed with `equals` are one map lookup; `regex` rules count as
 * snapshot patterns (the catalog uses them for dated ids); `starts_with`, `ends_with`, `contains` and `and`
 * rules may catch a different model, so a hit by them is a `prefix` match, which the table reports.
 */
export class EntryIndex<E> {
  private readonly exact = new Map<string, E>();
  private readonly rules: { rule: Rule; entry: E }[] = [];

  add(match: MatchLogic, entry: E): void {
    this.walk(match, entry);
  }

  find(name: string): { entry: E; match: 'exact' | 'snapshot' | 'prefix' } | undefined {
    const lower = name.toLowerCase();
    const hit = this.exact.get(lower);
    if (hit !== undefined) return { entry: hit, match: 'exact' };
    // Snapshot patterns before prefix rules, whatever their order in the data: the narrower rule wins.
    let prefix: E | undefined;
    for (const { rule, entry } of this.rules) {
      if (!rule.test(lower)) continue;
      if (rule.kind === 'snapshot') return { entry, match: 'snapshot' };
      prefix ??= entry;
    }
    return prefix === undefined ? undefined : { entry: prefix, match: 'prefix' };
  }

  private walk(m: MatchLogic, entry: E): void {
    if ('or' in m) {
      for (const x of m.or) this.walk(x, entry);
    } else if ('equals' in m) {
      const k = m.equals.toLowerCase();
      if (!this.exact.has(k)) this.exact.set(k, entry);
    } else if ('regex' in m) {
      const re = new RegExp(m.regex, 'i');
      this.rules.push({ rule: { test: (n) => re.test(n), kind: 'snapshot' }, entry });
    } else {
      this.rules.push({ rule: { test: (n) => matches(m, n), kind: 'prefix' }, entry });
    }
  }
}

/** The package's matching rule (case-insensitive), for the rules that are not a plain list of names. */
export function matches(m: MatchLogic, name: string): boolean {
  const n = name.toLowerCase();
  if ('or' in m) return m.or.some((x) => matches(x, n));
  if ('and' in m) return m.and.every((x) => matches(x, n));
  if ('equals' in m) return n === m.equals.toLowerCase();
  if ('starts_with' in m) return n.startsWith(m.starts_with.toLowerCase());
  if ('ends_with' in m) return n.endsWith(m.ends_with.toLowerCase());
  if ('contains' in m) return n.includes(m.contains.toLowerCase());
  if ('regex' in m) return new RegExp(m.regex, 'i').test(n);
  return false;
}

/**
 * Which catalog providers to search, in order, for a gateway provider kind. OpenRouter ids are searched as
 * OpenRouter lists them first, then under their vendor (`openai/gpt-6.1-sol` as openai's `gpt-6.1-sol`).
 */
export function searchOrder(model: string, kind?: string): { provider: string; name: string; vendor: boolean }[] {
  const slash = model.indexOf('/');
  const vendor = slash > 0 ? { provider: model.slice(0, slash).toLowerCase(), name: model.slice(slash + 1), vendor: true } : undefined;
  if (kind === 'openai') return [{ provider: 'openai', name: model, vendor: false }, ...(vendor?.provider === 'openai' ? [vendor] : [])];
  if (kind === 'openrouter') return [{ provider: 'openrouter', name: model, vendor: false }, ...(vendor ? [vendor] : [])];
  // Unknown or unspecified kind: OpenAI's names, then OpenRouter's, then the vendor's.
  return [{ provider: 'openai', name: model, vendor: false }, { provider: 'openrouter', name: model, vendor: false }, ...(vendor ? [vendor] : [])];
}
