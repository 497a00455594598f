import type { OpenAIError } from '@gw/common';
import { isObject } from '@gw/common';
import { sseData } from './sse.reader';
import { SseObserver, StreamMeter, UsageReader } from './sse.observer';

/** An event that may carry a usage block (`"usage": {`, whatever the spacing); confirmed by parsing it. */
export const USAGE_EVENT = /"usage"\s*:\s*\{/;
/** A chat chunk that streamed something (about one token each), for estimating a stream without usage. */
const CONTENT_EVENT = /"(?:content|arguments|refusal|reasoning|reasoning_content)"\s*:\s*"(?!")/;
/** A chat chunk that ends its choice (`"finish_reason": "stop"`, not `null`). */
const FINISH_EVENT = /"finish_reason"\s*:\s*"/;

/**
 * OpenAI chat completions, relayed event by event with the bytes untouched. Only an event that may carry usage
 * is parsed (the final usage chunk): read, and dropped when the client did not ask for usage (the gateway
 * always asks, to meter). A stream that ends with neither `[DONE]` nor a finish_reason nor usage was cut short.
 * A break after the head is told with an error chunk (`data: {"error":…}`).
 */
export class OpenAIChatObserver implements SseObserver {
  readonly kind = 'sse';
  deltas = 0;
  private sawDone = false;
  private sawFinish = false;

  constructor(
    private readonly meter: StreamMeter,
    private readonly reader: UsageReader,
    private readonly clientWantsUsage: boolean,
  ) {}

  start(): string {
    return '';
  }

  events(events: string[]): string {
    let out = '';
    for (const ev of events) {
      const data = sseData(ev);
      if (data?.trim() === '[DONE]') {
        this.sawDone = true;
      } else {
        if (CONTENT_EVENT.test(ev)) this.deltas++;
        if (FINISH_EVENT.test(ev)) this.sawFinish = true;
        if (data !== undefined && USAGE_EVENT.test(ev) && this.readUsage(data)) continue;
      }
      out += ev + '\n\n';
    }
    return out;
  }

  end(): string {
    if (!this.sawDone && !this.sawFinish && !this.meter.usageReported) throw new Error('upstream stream ended early');
    return '';
  }

  failure(err: OpenAIError): string {
    return `data: ${JSON.stringify(err.body)}\n\n`;
  }

  /** Reads the usage chunk; true when the event is to be dropped (usage-only, not asked for by the client). */
  private readUsage(data: string): boolean {
    let j: unknown;
    try {
      j = JSON.parse(data);
    } catch {
      return false; // not JSON: relayed as is
    }
    if (!isObject(j)) return false;
    if (isObject(j.usage)) {
      this.meter.usage = this.reader.usage('chat', j.usage);
      this.meter.usageReported = true;
      this.meter.noteServiceTier(j.service_tier);
    }
    return !this.clientWantsUsage && Array.isArray(j.choices) && j.choices.length === 0;
  }
}
