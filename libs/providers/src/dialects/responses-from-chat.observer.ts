import type { OpenAIError } from '@gw/common';
import { isObject } from '@gw/common';
import type { ResolvedProvider } from '../provider.adapter';
import { ChatToResponsesStream } from '../translate';
import { eachChatChunk } from './chat-chunks.reader';
import { SseObserver, StreamMeter, responseErrorOf } from './sse.observer';
import type { ResponsesFromChatTranslator } from './responses-from-chat.translator';

/** Chat delta fields that carry output (about one token each). */
const OUTPUT_FIELDS = ['content', 'refusal', 'reasoning', 'reasoning_content'];

/**
 * A chat stream in, Responses events out (`ChatToResponsesStream`). Every chunk is parsed (it is translated
 * anyway); an `error` chunk ends the stream as a 502 `upstream_error`; one that ends with neither `[DONE]` nor
 * a finish_reason was cut short and is never reported completed. A break is told with the translator's
 * `response.failed`.
 */
export class ResponsesFromChatObserver implements SseObserver {
  readonly kind = 'sse';
  readonly headStatus = 200;
  deltas = 0;
  private sawDone = false;
  private sawFinish = false;
  private readonly stream: ChatToResponsesStream;

  constructor(
    private readonly meter: StreamMeter,
    private readonly provider: ResolvedProvider,
    translator: ResponsesFromChatTranslator,
  ) {
    this.stream = new ChatToResponsesStream(translator.context());
  }

  start(): string {
    return this.stream.start().join('');
  }

  events(events: string[]): string {
    let out = '';
    const done = eachChatChunk(events, this.provider, this.meter, (chunk) => {
      const choices = chunk.choices;
      if (Array.isArray(choices)) {
        if (choices.some((c) => isObject(c) && streamedSomething(c.delta))) this.deltas++;
        if (choices.some((c) => isObject(c) && typeof c.finish_reason === 'string' && c.finish_reason)) this.sawFinish = true;
      }
      for (const f of this.stream.push(chunk)) out += f;
    });
    if (done) this.sawDone = true;
    return out;
  }

  end(): string {
    // Neither [DONE] nor a finish_reason: the upstream went away mid-answer; never report it completed.
    if (!this.sawDone && !this.sawFinish) throw new Error('upstream stream ended before it finished');
    return this.stream.finish().join('');
  }

  failure(err: OpenAIError): string {
    return this.stream.fail(responseErrorOf(err)).join('');
  }
}

/** Whether a chat delta carried output (about one token), for estimating a stream that reported no usage. */
function streamedSomething(delta: unknown): boolean {
  if (!isObject(delta)) return false;
  for (const k of OUTPUT_FIELDS) {
    const v = delta[k];
    if (typeof v === 'string' && v) return true;
  }
  return Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0;
}
