import { OpenAIError, isObject } from '@gw/common';
import type { ResolvedProvider } from '../provider.adapter';
import { JsonDialect, SseObserver, StreamMeter, responseErrorOf } from '../dialects/sse.observer';
import { eachChatChunk } from '../dialects/chat-chunks.reader';
import { chatUsageToNormalised, normalisedToResponsesUsage } from '../translate/usage.mapper';
import { sseFrame } from '../translate/sse.util';
import type { NormalisedUsage } from '../translate/translate.types';
import { userMessagesOf } from './compaction.request';

/** What a compaction answer needs besides the summary: ids, the model as the client named it, the sealer. */
export interface CompactionOrigin {
  responseId: string;
  model: string;
  createdAt: number;
  /** The summary → the item's `encrypted_content` (sealed for the request's tenant and target). */
  seal(summary: string): string;
}

/** Said when a chat model answered the checkpoint prompt with no text (e.g. only a tool call). */
const NO_SUMMARY = '(no summary was produced)';

function compactionItem(origin: CompactionOrigin, summary: string): Record<string, unknown> {
  return { type: 'compaction', id: `cmp_${origin.responseId.replace(/^resp_/, '')}`, encrypted_content: origin.seal(summary.trim() || NO_SUMMARY) };
}

function responseObject(
  origin: CompactionOrigin,
  status: string,
  output: unknown[],
  usage: NormalisedUsage | null,
  error: unknown = null,
): Record<string, unknown> {
  return {
    id: origin.responseId,
    object: 'response',
    created_at: origin.createdAt,
    status,
    error,
    incomplete_details: null,
    model: origin.model,
    output,
    usage: usage ? normalisedToResponsesUsage(usage) : null,
  };
}

/** The text of a chat completion's first choice (a summary). */
function completionText(answer: Record<string, unknown>): string {
  const choice: unknown = Array.isArray(answer.choices) ? answer.choices[0] : undefined;
  const message = isObject(choice) ? choice.message : undefined;
  return isObject(message) && typeof message.content === 'string' ? message.content : '';
}

/**
 * Remote compaction v2 served by a chat-only provider, streamed: the chat model's summary is collected (nothing is
 * shown while it is written) and answered as the one `compaction` output item Codex expects, then
 * `response.completed` with the call's usage. A broken stream ends with `response.failed` and no item.
 */
export class CompactionFromChatObserver implements SseObserver {
  readonly kind = 'sse';
  readonly headStatus = 200;
  deltas = 0;
  private text = '';
  private finished = false;
  private seq = 0;

  constructor(
    private readonly meter: StreamMeter,
    private readonly provider: ResolvedProvider,
    private readonly origin: CompactionOrigin,
  ) {}

  private frame(type: string, fields: Record<string, unknown>): string {
    return sseFrame(type, { type, sequence_number: this.seq++, ...fields });
  }

  start(): string {
    const pending = responseObject(this.origin, 'in_progress', [], null);
    return this.frame('response.created', { response: pending }) + this.frame('response.in_progress', { response: pending });
  }

  events(events: string[]): string {
    const done = eachChatChunk(events, this.provider, this.meter, (chunk) => {
      for (const c of Array.isArray(chunk.choices) ? chunk.choices : []) {
        if (!isObject(c)) continue;
        const delta = c.delta;
        if (isObject(delta) && typeof delta.content === 'string' && delta.content) {
          this.text += delta.content;
          this.deltas++;
        }
        if (typeof c.finish_reason === 'string' && c.finish_reason) this.finished = true;
      }
    });
    if (done) this.finished = true;
    return '';
  }

  end(): string {
    if (!this.finished) throw new Error('upstream stream ended before it finished');
    const item = compactionItem(this.origin, this.text);
    const usage = this.meter.usageReported ? this.meter.usage : { inputTokens: 0, outputTokens: this.deltas, cachedTokens: 0, reasoningTokens: 0 };
    return (
      this.frame('response.output_item.added', { output_index: 0, item }) +
      this.frame('response.output_item.done', { output_index: 0, item }) +
      this.frame('response.completed', { response: responseObject(this.origin, 'completed', [item], usage) })
    );
  }

  failure(err: OpenAIError): string {
    return this.frame('response.failed', { response: responseObject(this.origin, 'failed', [], null, responseErrorOf(err)) });
  }
}

/** The same, not streamed: a Responses object whose one output item is the compaction. */
export class CompactionFromChatJson implements JsonDialect {
  readonly kind = 'json';
  readonly op = 'chat';

  constructor(private readonly origin: CompactionOrigin) {}

  rewrite(answer: Record<string, unknown>): string {
    const item = compactionItem(this.origin, completionText(answer));
    return JSON.stringify(responseObject(this.origin, 'completed', [item], chatUsageToNormalised(answer.usage)));
  }
}

/**
 * `POST /v1/responses/compact` served by a chat-only provider: the compacted window as OpenAI returns it, the
 * conversation's user messages followed by one compaction item (`object: "response.compaction"`).
 */
export class CompactedFromChatJson implements JsonDialect {
  readonly kind = 'json';
  readonly op = 'chat';

  constructor(
    private readonly origin: CompactionOrigin,
    private readonly request: Record<string, unknown>,
  ) {}

  rewrite(answer: Record<string, unknown>): string {
    const o = this.origin;
    const output = [...userMessagesOf(this.request), compactionItem(o, completionText(answer))];
    return JSON.stringify({
      id: o.responseId,
      object: 'response.compaction',
      created_at: o.createdAt,
      output,
      usage: normalisedToResponsesUsage(chatUsageToNormalised(answer.usage)),
    });
  }
}
