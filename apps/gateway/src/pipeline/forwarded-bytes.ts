import type { Body } from './call-plan';

const MODEL_KEY = Buffer.from('"model"');
/** `\u006X` spells m, o, d, e or l (and a few others): a key written with it could decode to "model". */
const MODEL_LETTER_ESCAPE = Buffer.from('\\u006');
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
 * in JSON.parse): such a body is re-serialised, so the upstream never sees a model the route did not choose.
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
  if (raw.indexOf(MODEL_KEY, valueEnd) !== -1 || raw.indexOf(MODEL_LETTER_ESCAPE) !== -1) return undefined;
  if (out.model === c.model) return raw;
  return Buffer.concat([raw.subarray(0, valueStart), Buffer.from(JSON.stringify(out.model)), raw.subarray(valueEnd)]);
}
