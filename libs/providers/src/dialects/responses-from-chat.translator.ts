import { Errors, OpenAIError, isObject } from '@gw/common';
import type { ResolvedProvider } from '../provider.adapter';
import {
  ChatCompletion,
  ChatToResponsesContext,
  ResponsesRequest,
  ResponsesToChatResult,
  chatCompletionToResponse,
  responsesRequestToChat,
} from '../translate';
import { JsonDialect } from './sse.observer';
import { scrubSecrets } from './scrub-secrets.util';

/** What a translated response needs to know about its request (our ids, the model as the client named it). */
export interface ResponsesFromChatOrigin {
  requestId: string;
  model: string | null;
  startedAt: Date;
}

/**
 * The Responses API served by a chat-only provider, one schema pair: the request (Responses → chat, once),
 * the non-stream answer (chat completion → response object) and a stream's error chunk (→ 502). The stream's
 * events are `ResponsesFromChatObserver`'s. Stateless: `previous_response_id` cannot be honoured here.
 */
export class ResponsesFromChatTranslator implements JsonDialect {
  readonly kind = 'json';
  readonly op = 'chat';
  /** Responses → chat, with any failure on an odd request shape reported as the client's 400. */
  readonly chat: ResponsesToChatResult;

  constructor(
    private readonly request: Record<string, unknown>,
    private readonly origin: ResponsesFromChatOrigin,
  ) {
    try {
      this.chat = responsesRequestToChat(request as unknown as ResponsesRequest);
    } catch (e) {
      throw Errors.badRequest(`The request could not be translated for a chat-only provider: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  /** The context both translations of the answer share (ids, model, the request's tool names). */
  context(): ChatToResponsesContext {
    const o = this.origin;
    return {
      responseId: `resp_${o.requestId.replace(/^req_/, '')}`,
      model: o.model ?? String(this.request.model),
      createdAt: Math.floor(o.startedAt.getTime() / 1000),
      customTools: this.chat.customTools,
      namespacedTools: this.chat.namespacedTools,
      request: this.request as unknown as ResponsesRequest,
    };
  }

  rewrite(answer: Record<string, unknown>): string {
    return JSON.stringify(chatCompletionToResponse(answer as unknown as ChatCompletion, this.context()));
  }

  /** A chat chunk carrying `error` ends the translated stream as the upstream's failure (502, secrets scrubbed). */
  static chunkError(chunk: Record<string, unknown>, p: ResolvedProvider): OpenAIError | undefined {
    const error = chunk.error;
    if (error === undefined || error === null) return undefined;
    const message = isObject(error) && typeof error.message === 'string' ? error.message : 'stream error';
    return new OpenAIError(502, `${p.name}: ${scrubSecrets(message.slice(0, 500), p.credential)}`, 'server_error', 'upstream_error');
  }
}
