import type { ResolvedTarget } from './route.table';

/**
 * Session affinity by weighted rendezvous (highest-random-weight) hashing: every target of a group gets a
 * score from (session key, target), the highest first. Every replica computes the same order from the key
 * alone (no shared state per session); a target's share of sessions is proportional to its weight; removing
 * a target moves only the sessions it held. Scores: `weight / -ln(u)` with `u` uniform in (0, 1) from the
 * hash (Schindelhauer & Schomaker's weighted rendezvous).
 */

/** The longest prefix of a session key that is hashed: a key is an id, not a document (bounded work). */
const MAX_KEY_CHARS = 256;
const TWO_32 = 4294967296;
// Bound once: under Jest 30 the global `Math` sits behind a proxy that makes each lookup ~100× slower.
const imul = Math.imul;
const ln = Math.log;

/** FNV-1a over UTF-16 code units: 32 bits, enough to spread sessions, no crypto needed (not a secret). */
export function hashKey(s: string): number {
  let h = 0x811c9dc5;
  const n = s.length < MAX_KEY_CHARS ? s.length : MAX_KEY_CHARS;
  for (let i = 0; i < n; i++) {
    h ^= s.charCodeAt(i);
    h = imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finaliser: a bijection with full avalanche, so (key ^ target) gives independent-looking draws. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A target's identity as every replica sees it: its provider's id and upstream model (not its position,
 * weight or priority, so editing those does not reshuffle every session). Computed once per resolved target.
 */
export function targetHash(t: ResolvedTarget): number {
  return (t.idHash ??= mix(hashKey(t.provider.id + '\u0000' + (t.model ?? ''))));
}

/** The rendezvous score of target `t` for the session whose key hashed to `key`: higher ranks first. */
export function affinityScore(key: number, t: ResolvedTarget, weight: number): number {
  const u = (mix((key ^ targetHash(t)) >>> 0) + 0.5) / TWO_32;
  return weight / -ln(u);
}

/**
 * A group's targets in the session's order (highest score first), appended to `out`. A weight of 0 ranks last
 * (a target kept for fallback only, as with random picks); all weights 0 count as equal. An insertion sort
 * over a handful of targets: no allocation beyond the scores.
 */
export function rendezvousOrder(group: readonly ResolvedTarget[], key: number, out: ResolvedTarget[] = []): ResolvedTarget[] {
  let equal = true;
  for (const t of group) if (t.weight > 0) equal = false;
  if (group.length === 2) {
    // The common case, without sorting.
    const [a, b] = group;
    if (affinityScore(key, a, equal ? 1 : a.weight) >= affinityScore(key, b, equal ? 1 : b.weight)) out.push(a, b);
    else out.push(b, a);
    return out;
  }
  const base = out.length;
  const scores: number[] = [];
  for (const t of group) {
    const s = affinityScore(key, t, equal ? 1 : t.weight);
    let i = scores.length;
    out.push(t);
    scores.push(s);
    // Insertion: shift lower scores up one place.
    while (i > 0 && scores[i - 1] < s) {
      scores[i] = scores[i - 1];
      out[base + i] = out[base + i - 1];
      i--;
    }
    scores[i] = s;
    out[base + i] = t;
  }
  return out;
}

/**
 * The session a request belongs to, for affinity: `prompt_cache_key` in the body (what Codex sets to its
 * session id, and what any client uses to ask for one prompt cache), else Codex's `session_id` / `session-id`
 * header (0.169 sends `session-id`; earlier versions `session_id`). Undefined: no session, random order.
 */
export function sessionKeyOf(body: unknown, headers: Record<string, string | string[] | undefined>): string | undefined {
  if (body && typeof body === 'object') {
    const k = (body as { prompt_cache_key?: unknown }).prompt_cache_key;
    if (typeof k === 'string' && k !== '') return k;
  }
  const h = headers['session-id'] ?? headers.session_id;
  const v = Array.isArray(h) ? h[0] : h;
  return typeof v === 'string' && v !== '' ? v : undefined;
}
