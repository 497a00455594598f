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
 * inside strings do not count). Runs before parsing, so it never recurses. String contents, most of a real
 * body's bytes (a Codex history), are skipped with a native search for the closing quote (memchr), so the scan
 * costs a fraction of the parse. Text that is not JSON may be judged either way: the parser refuses it anyway.
 */
export function jsonNestingExceeds(buf: Uint8Array, max = MAX_JSON_DEPTH): boolean {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = b.length;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = b[i];
    if (c === QUOTE) {
      let j = i;
      for (;;) {
        j = b.indexOf(QUOTE, j + 1);
        if (j === -1) return false; // unterminated string: not JSON
        // Escaped when preceded by an odd run of backslashes (`\\"` ends the string, `\"` does not).
        let k = j - 1;
        while (k > i && b[k] === BACKSLASH) k--;
        if ((j - 1 - k) % 2 === 0) break;
      }
      i = j;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
  return false;
}
