import { SseReader } from './sse.reader';

const LF = 0x0a;
const CR = 0x0d;
const BOUNDARY = Buffer.from('\n\n');

/**
 * The byte path's splitter: upstream chunks → the bytes of the whole events that ended in them, as one Buffer,
 * never decoded (a pass-through stream is forwarded as it came: no UTF-8 decoding, string concatenation or
 * re-encoding on the socket write). What follows the last blank line is held back, so a stream that breaks
 * mid-event leaves no partial event before the failure frame. A stream with a CR anywhere (CRLF line ends)
 * falls back, from that chunk on, to the string reader (`SseReader`, which normalises them): `push` then
 * returns its string events.
 */
export class SseByteReader {
  /** Bytes after the last blank line, in the chunks they came in (concatenated only once an event ends). */
  private pending: Buffer[] = [];
  private strings: SseReader | undefined;

  /** Whole events to forward (ending with their blank line), string events after a fallback, or undefined: none yet. */
  push(chunk: Buffer): Buffer | string[] | undefined {
    if (this.strings) return this.strings.push(chunk);
    if (chunk.length === 0) return undefined;
    if (chunk.indexOf(CR) !== -1) return this.fallBack(chunk);
    const n = chunk.length;
    // Most chunks are whole events (a model's stream writes one at a time): their end is the last boundary.
    const cut = n >= 2 && chunk[n - 1] === LF && chunk[n - 2] === LF ? n - 2 : chunk.lastIndexOf(BOUNDARY);
    let end = cut + 2;
    if (cut === -1) {
      // The only boundary may straddle the chunks: held bytes ending in \n, this chunk starting with one.
      if (chunk[0] !== LF || !this.pendingEndsInLf()) {
        this.pending.push(chunk);
        return undefined;
      }
      end = 1;
    }
    const head = end === chunk.length ? chunk : chunk.subarray(0, end);
    const out = this.pending.length === 0 ? head : Buffer.concat([...this.pending, head]);
    this.pending = end === chunk.length ? [] : [chunk.subarray(end)];
    return out;
  }

  /** The stream ended cleanly: what is left (an event without its final blank line), as `SseReader.end` gives it. */
  end(): string[] {
    if (this.strings) return this.strings.end();
    const rest = Buffer.concat(this.pending).toString('utf8').trim();
    this.pending = [];
    return rest ? [rest] : [];
  }

  private pendingEndsInLf(): boolean {
    const last = this.pending[this.pending.length - 1];
    return last?.[last.length - 1] === LF;
  }

  private fallBack(chunk: Buffer): string[] {
    this.strings = new SseReader();
    const held = this.pending.length === 0 ? chunk : Buffer.concat([...this.pending, chunk]);
    this.pending = [];
    return this.strings.push(held);
  }
}
