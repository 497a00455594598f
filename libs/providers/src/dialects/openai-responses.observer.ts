import type { OpenAIError } from '@gw/common';
import { isObject } from '@gw/common';
import { sseFrame } from '../translate';
import { sseData } from './sse.reader';
import { SseByteReader } from './sse-bytes.reader';
import { SseByteObserver, StreamMeter, UsageReader, responseErrorOf } from './sse.observer';

/** Events that end a Responses stream and carry the final usage. */
const TERMINAL = /"type"\s*:\s*"response\.(completed|incomplete|failed)"/;
const RESPONSE_ID = /"id"\s*:\s*"(resp_[^"]+)"/;
/**
 * In bytes, an event TERMINAL can match holds one of these (ASCII, so never inside a multi-byte character):
 * `complete` (in `response.completed` and `response.incomplete`) or `failed"`. Searched for instead of the
 * whole `"response.…"` names, whose leading quote (frequent in JSON) makes each search several times dearer.
 */
const COMPLETE_BYTES = Buffer.from('complete');
const FAILED_BYTES = Buffer.from('failed"');
const DELTA_BYTES = Buffer.from('.delta"');
const BOUNDARY = Buffer.from('\n\n');
const NONE = Buffer.alloc(0);

/**
 * The OpenAI Responses API, relayed natively event by event with the bytes untouched. Usage is read from the
 * terminal event (`response.completed|incomplete|failed`); a stream without one was cut short. A break after
 * the head is told with `response.failed`, naming the upstream's response id.
 *
 * Two paths, one meaning: `events` (strings, when an adapter rewrites events) and `bytes` (the relay's usual
 * one): the upstream's bytes forwarded whole-event by whole-event, with only the first event (for the id) and
 * the terminal one (for usage) decoded; deltas are counted with native byte searches.
 */
export class OpenAIResponsesObserver implements SseByteObserver {
  readonly kind = 'sse';
  deltas = 0;
  private seq = 0;
  private terminal = false;
  private readonly byteReader = new SseByteReader();

  constructor(
    private readonly meter: StreamMeter,
    private readonly reader: UsageReader,
    /** Our id for the response until the upstream names its own (in its first event). */
    private responseId: string,
    private readonly model: string | null,
  ) {}

  start(): string {
    return '';
  }

  events(events: string[]): string {
    let out = '';
    for (const ev of events) {
      // Keep the upstream's id so a response.failed we emit names the same response.
      if (this.seq++ === 0) this.responseId = RESPONSE_ID.exec(ev)?.[1] ?? this.responseId;
      if (TERMINAL.test(ev)) this.readTerminal(ev);
      else if (ev.includes('.delta"')) this.deltas++;
      out += ev + '\n\n';
    }
    return out;
  }

  bytes(chunk: Buffer): Buffer | string {
    const got = this.byteReader.push(chunk);
    if (got === undefined) return NONE;
    if (Array.isArray(got)) return this.events(got); // CRLF: the string path from here on
    this.meterBytes(got);
    return got;
  }

  bytesEnd(): string {
    return this.events(this.byteReader.end());
  }

  end(): string {
    if (!this.terminal) throw new Error('upstream stream ended before response.completed');
    return '';
  }

  failure(err: OpenAIError): string {
    return sseFrame('response.failed', {
      type: 'response.failed',
      sequence_number: this.seq + 1,
      response: { id: this.responseId, object: 'response', status: 'failed', model: this.model, output: [], error: responseErrorOf(err), usage: null },
    });
  }

  /**
   * What `events` reads, read off whole events' bytes: each event is [start, boundary) and empty ones are
   * skipped, as SseReader does. One cursor per searched pattern, each moved forward only past the event it was
   * found in, so a pattern costs one native scan of the bytes; only the first event and terminal candidates
   * are decoded.
   */
  private meterBytes(buf: Buffer): void {
    let delta = next(buf, DELTA_BYTES, 0);
    let complete = next(buf, COMPLETE_BYTES, 0);
    let failed = next(buf, FAILED_BYTES, 0);
    let start = 0;
    for (let b = buf.indexOf(BOUNDARY); b !== -1; start = b + 2, b = start < buf.length ? buf.indexOf(BOUNDARY, start) : -1) {
      if (b === start) continue;
      if (this.seq++ === 0) this.responseId = RESPONSE_ID.exec(buf.toString('utf8', start, b))?.[1] ?? this.responseId;
      let terminal = false;
      if (complete < b || failed < b) {
        if (complete < b) complete = next(buf, COMPLETE_BYTES, b + 2);
        if (failed < b) failed = next(buf, FAILED_BYTES, b + 2);
        const ev = buf.toString('utf8', start, b);
        terminal = TERMINAL.test(ev);
        if (terminal) this.readTerminal(ev);
      }
      if (delta < b) {
        if (!terminal) this.deltas++;
        delta = next(buf, DELTA_BYTES, b + 2);
      }
    }
  }

  private readTerminal(ev: string): void {
    let j: unknown;
    try {
      j = JSON.parse(sseData(ev) ?? '');
    } catch {
      return; // relayed as is
    }
    if (!isObject(j)) return;
    const response = isObject(j.response) ? j.response : undefined;
    if (response && isObject(response.usage)) {
      this.meter.usage = this.reader.usage('responses', response.usage);
      this.meter.usageReported = true;
    }
    if (response) this.meter.noteServiceTier(response.service_tier);
    this.terminal = true;
    if (j.type === 'response.failed') {
      this.meter.status = 502;
      this.meter.errorCode = 'response_failed';
    }
  }
}

/** Where `pattern` next occurs in `buf` from `from`; none: past any index (so `< boundary` tests stay simple). */
function next(buf: Buffer, pattern: Buffer, from: number): number {
  const at = from < buf.length ? buf.indexOf(pattern, from) : -1;
  return at === -1 ? Infinity : at;
}
