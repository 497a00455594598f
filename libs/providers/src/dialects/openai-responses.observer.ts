import type { OpenAIError } from '@gw/common';
import { isObject } from '@gw/common';
import { sseFrame } from '../translate';
import { sseData } from './sse.reader';
import { SseObserver, StreamMeter, UsageReader, responseErrorOf } from './sse.observer';

/** Events that end a Responses stream and carry the final usage. */
const TERMINAL = /"type"\s*:\s*"response\.(completed|incomplete|failed)"/;
const RESPONSE_ID = /"id"\s*:\s*"(resp_[^"]+)"/;

/**
 * The OpenAI Responses API, relayed natively event by event with the bytes untouched. Usage is read from the
 * terminal event (`response.completed|incomplete|failed`); a stream without one was cut short. A break after
 * the head is told with `response.failed`, naming the upstream's response id.
 */
export class OpenAIResponsesObserver implements SseObserver {
  readonly kind = 'sse';
  deltas = 0;
  private seq = 0;
  private terminal = false;

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
