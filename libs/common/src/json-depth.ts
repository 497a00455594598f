/**
 * How deeply a request body's JSON may nest. JSON.parse copes with any depth, but what walks the parsed value
 * afterwards recurses (Nest's ValidationPipe, class-transformer, our translators, JSON.stringify when a body
 * is forwarded): 10,000 levels overflowed the stack and answered 500. Real payloads (tool schemas included)
 * nest a few dozen levels at most.
 */
export const MAX_JSON_DEPTH = 128;

const OPEN_ARRAY = 0x5b; // [
const OPEN_OBJECT = 0x7b; // {
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether the JSON text in `buf` nests arrays/objects deeper than `max`, by one pass over the bytes (brackets
 * inside strings do not count). Runs before parsing, so it never recurses and costs one loop over the body.
 * Text that is not JSON may be judged either way: the parser refuses it anyway.
 */
export function jsonNestingExceeds(buf: Uint8Array, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
  return false;
}
