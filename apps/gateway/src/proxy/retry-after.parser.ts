type HeaderValue = string | string[] | undefined;
type Headers = Record<string, HeaderValue>;

function first(v: HeaderValue): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' && s.trim() ? s.trim() : undefined;
}

/** "Retry-After: 2" or an HTTP date, in ms; undefined when absent or unparseable. */
export function retryAfterMs(value: HeaderValue, now = Date.now()): number | undefined {
  const v = first(value);
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * OpenAI's `x-ratelimit-reset-requests` / `-tokens`: Go-style durations ("1s", "6m0s", "20ms", "1h2m3.5s"),
 * or a bare number of seconds. Undefined when absent or unparseable.
 */
export function resetDurationMs(value: HeaderValue): number | undefined {
  const v = first(value);
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  if (!/^(\d+(\.\d+)?(ms|h|m|s))+$/.test(v)) return undefined;
  let ms = 0;
  for (const m of v.matchAll(DURATION_PART)) ms += Number(m[1]) * UNIT_MS[m[2]];
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * How long an upstream that answered 429 asks to be left alone, in ms, or undefined if it does not say.
 * `retry-after-ms` (OpenAI, honoured by its SDKs) first, then `Retry-After` (seconds or an HTTP date), then
 * OpenAI's `x-ratelimit-reset-*`: of the limits it reports exhausted (`x-ratelimit-remaining-* = 0`), the
 * later reset; when it reports none exhausted, the later of both. Not capped here (the caller caps).
 */
export function upstreamWaitMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number(first(headers['retry-after-ms']));
  if (first(headers['retry-after-ms']) !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const ra = retryAfterMs(headers['retry-after'], now);
  if (ra !== undefined) return ra;
  const resets: number[] = [];
  const exhausted: number[] = [];
  for (const kind of ['requests', 'tokens']) {
    const reset = resetDurationMs(headers[`x-ratelimit-reset-${kind}`]);
    if (reset === undefined) continue;
    resets.push(reset);
    if (first(headers[`x-ratelimit-remaining-${kind}`]) === '0') exhausted.push(reset);
  }
  const pick = exhausted.length ? exhausted : resets;
  return pick.length ? Math.max(...pick) : undefined;
}
