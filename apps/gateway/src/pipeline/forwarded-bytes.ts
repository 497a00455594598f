import type { Body } from './call-plan';

const OPEN_MODEL = Buffer.from('{"model":');

/**
 * The client's request bytes as the upstream body, with only the model name changed, when that is all that
 * differs: a pass-through body is then neither re-serialised nor re-encoded (for a 100 kB Codex turn, ~200 µs
 * of JSON.stringify and UTF-8 encoding, and two large strings for the GC). Undefined when the bytes cannot
 * be forwarded; the caller serialises `out` as before.
 *
 * `out` is what the pipeline built for the target (a shallow copy of `client` with its changes): forwarded
 * only if every top-level value but `model` is the client's very own (===) and no key was added or removed.
 * The bytes must be UTF-8 (checked by the body reader) and open with `{"model":<the same JSON string>`: the
 * model key first, as Codex and the OpenAI SDKs write it. A second spelling of the key anywhere (a duplicate
 * `"model"`, or one written with `\u` escapes) would be what the upstream's parser keeps (the last one wins
 * in JSON.parse, the first in some parsers): the top-level keys are read off the bytes, and a body with a key
 * twice, or a key written with escapes, is re-serialised (one copy of each key, the one the gateway read), so
 * the upstream never reads a model, `stream`, `background` or output cap other than the ones admitted.
 */
export function forwardedBytes(raw: Buffer | undefined, client: unknown, out: Body): Buffer | undefined {
  if (!raw || !client || typeof client !== 'object' || typeof out.model !== 'string') return undefined;
  const c = client as Body;
  if (typeof c.model !== 'string') return undefined;
  let n = 0;
  for (const k in out) {
    if (k === 'model') continue;
    if (out[k] !== c[k] || !Object.prototype.hasOwnProperty.call(c, k)) return undefined;
    n++;
  }
  let m = 0;
  for (const k in c) if (k !== 'model') m++;
  if (m !== n) return undefined;
  let start = 0;
  while (start < raw.length && (raw[start] === 0x20 || raw[start] === 0x0a || raw[start] === 0x0d || raw[start] === 0x09)) start++;
  if (raw.compare(OPEN_MODEL, 0, OPEN_MODEL.length, start, start + OPEN_MODEL.length) !== 0) return undefined;
  const valueStart = start + OPEN_MODEL.length;
  const value = Buffer.from(JSON.stringify(c.model));
  const valueEnd = valueStart + value.length;
  if (raw.compare(value, 0, value.length, valueStart, valueEnd) !== 0) return undefined;
  if (!plainKeysOnce(raw, start, m + 1)) return undefined;
  if (out.model === c.model) return raw;
  return Buffer.concat([raw.subarray(0, valueStart), Buffer.from(JSON.stringify(out.model)), raw.subarray(valueEnd)]);
}

/**
 * Whether the object at `raw[start]` has exactly `count` top-level keys, none written with an escape. JSON.parse
 * keeps one value per distinct key, so with the parsed object's key count this says no key is there twice. Strings
 * are skipped with native searches (a 100 kB Codex turn: ~25 µs, against ~170 µs to re-serialise and encode it).
 */
export function plainKeysOnce(raw: Buffer, start: number, count: number): boolean {
  let depth = 0;
  let expectKey = false;
  let keys = 0;
  let i = start;
  const n = raw.length;
  while (i < n) {
    const c = raw[i];
    if (c === 0x22) {
      let j = raw.indexOf(0x22, i + 1);
      // A quote after an odd run of backslashes is escaped: the string goes on.
      while (j !== -1 && escaped(raw, j)) j = raw.indexOf(0x22, j + 1);
      if (j === -1) return false;
      if (depth === 1 && expectKey) {
        for (let b = i + 1; b < j; b++) if (raw[b] === 0x5c) return false;
        keys++;
        expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth === 1) expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c && depth === 1) expectKey = true;
    i++;
  }
  return keys === count;
}

function escaped(raw: Buffer, quote: number): boolean {
  let k = 0;
  for (let b = quote - 1; b >= 0 && raw[b] === 0x5c; b--) k++;
  return (k & 1) === 1;
}
