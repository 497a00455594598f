import { Errors, OpenAIError, isObject } from '@gw/common';
import type { ResolvedProvider } from '../provider.adapter';
import {
  ChatCompletion,
  ChatCompletionRequest,
  ChatProfile,
  ChatToResponsesContext,
  ResponsesRequest,
  ResponsesToChatResult,
  chatCompletionToResponse,
  fitChatRequest,
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

/** One provider's chat body for the request, and the labels of what it could not carry. */
export interface ChatForProvider {
  body: ChatCompletionRequest;
  /** Bounded labels (`tools:web_search`, `text.verbosity`, …), in request order: the `x-gateway-dropped` header. */
  dropped: string[];
}

/**
 * The Responses API served by a chat-only provider, one schema pair: the request (Responses → chat, once),
 * the non-stream answer (chat completion → response object) and a stream's error chunk (→ 502). The stream's
 * events are `ResponsesFromChatObserver`'s. Stateless: `previous_response_id` cannot be honoured here.
 * The translation keeps everything a chat body can hold (reasoning both ways, tool_search, mapped fields);
 * `forProvider` fits it to one provider kind, at most once per kind.
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
      this.chat = responsesRequestToChat(request as unknown as ResponsesRequest, {
        supportsReasoningContent: true,
        reasoningField: 'reasoning',
        supportsReasoningEffort: true,
        carryExtras: true,
      });
    } catch (e) {
      throw Errors.badRequest(`The request could not be translated for a chat-only provider: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  private readonly fitted = new Map<ChatProfile, ChatForProvider>();

  /** The chat body for a provider of `kind`, with what it cannot take removed and named. */
  forProvider(kind: ChatProfile): ChatForProvider {
    let f = this.fitted.get(kind);
    if (!f) {
      const fit = fitChatRequest(kind, this.chat.chat);
      f = { body: fit.body, dropped: fit.dropped.length ? [...this.chat.dropped, ...fit.dropped] : this.chat.dropped };
      this.fitted.set(kind, f);
    }
    return f;
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
      toolSearchName: this.chat.toolSearchName,
      request: this.request as unknown as ResponsesRequest,
      // Reasoning comes back as Codex shows it (summary events) and goes back next turn (reasoning items).
      emitReasoning: true,
      reasoningSummary: true,
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
