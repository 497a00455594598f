import { isObject } from '@gw/common';
import { splitToolName } from './tool-names.util';
import { encodeReasoningDetails } from './reasoning-details.util';
import type {
  ChatCompletion,
  ChatContentPart,
  NamespacedToolName,
  NormalisedUsage,
  OutputTextPart,
  RefusalPart,
  ResponseCustomToolCallItem,
  ResponseError,
  ResponseFunctionCallItem,
  ResponseItem,
  ResponseObject,
  ResponseReasoningItem,
  ResponseToolSearchCallItem,
  ResponseStatus,
  ResponsesRequest,
} from './translate.types';
import { chatUsageToNormalised, normalisedToResponsesUsage } from './usage.mapper';

export interface ChatToResponsesContext {
  responseId: string;
  model: string;
  /** Unix seconds. */
  createdAt: number;
  /** Chat-side names of wrapped custom tools (from `responsesRequestToChat`). */
  customTools: Set<string>;
  /** The original request; a few of its settings are echoed on the response object. */
  request?: ResponsesRequest;
  /** Chat-side flat name -> (namespace, name), from `responsesRequestToChat().namespacedTools`. */
  namespacedTools?: ReadonlyMap<string, NamespacedToolName>;
  /**
   * Turn provider reasoning (`reasoning` / `reasoning_content`) into a `reasoning` output item with
   * `reasoning_text` content. Default false: dropped, since Codex cannot replay it to OpenAI and the
   * gateway must opt in per provider (pair it with `supportsReasoningContent` on the request side).
   */
  emitReasoning?: boolean;
  /**
   * With `emitReasoning`: the reasoning is also the item's summary and is streamed as the summary events
   * Codex shows (`response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta`), and
   * OpenRouter's `reasoning_details` ride in `encrypted_content` (reasoning-details.util.ts) to be sent back.
   */
  reasoningSummary?: boolean;
  /** Chat-side name of the function that stands for Codex's `tool_search`: its calls become `tool_search_call`. */
  toolSearchName?: string;
}

export type IncompleteReason = 'max_output_tokens' | 'content_filter';

/** finish_reason -> Responses incomplete reason; anything else counts as a normal completion. */
export function incompleteReasonFor(finishReason: string | null | undefined): IncompleteReason | undefined {
  if (finishReason === 'length') return 'max_output_tokens';
  if (finishReason === 'content_filter') return 'content_filter';
  return undefined;
}

// Item ids are derived from the response id and output index rather than random: unique per response,
// stable for golden tests, and no RNG on the hot path.
export function idBase(responseId: string): string {
  return responseId.startsWith('resp_') ? responseId.slice(5) : responseId;
}
export function itemId(prefix: 'msg' | 'fc' | 'ctc' | 'rs' | 'tsc', base: string, outputIndex: number): string {
  return `${prefix}_${base}_${outputIndex}`;
}

/**
 * Custom (free-form) tools were offered to the chat model as `{input: string}` functions; recover the raw
 * text. Models regularly ignore the wrapper (they were told apply_patch is "not JSON"), so a payload that
 * is not the expected object is taken verbatim rather than lost.
 */
export function extractCustomToolInput(args: string): string {
  if (!args.trim()) return '';
  let v: unknown;
  try {
    v = JSON.parse(args);
  } catch {
    return args;
  }
  if (typeof v === 'string') return v;
  if (isObject(v)) {
    if (typeof v.input === 'string') return v.input;
    const keys = Object.keys(v);
    if (keys.length === 1 && typeof v[keys[0]] === 'string') return v[keys[0]] as string;
  }
  return args;
}

/** A `tool_search` call's arguments as the object Codex reads; text that is not a JSON object becomes the query. */
export function toolSearchArguments(args: string): Record<string, unknown> {
  if (!args.trim()) return {};
  try {
    const v: unknown = JSON.parse(args);
    if (isObject(v)) return v;
  } catch {
    /* not JSON: taken as the query */
  }
  return { query: args };
}

export function buildToolCallItem(
  ctx: Pick<ChatToResponsesContext, 'customTools' | 'namespacedTools' | 'toolSearchName'>,
  base: string,
  outputIndex: number,
  callId: string,
  chatName: string,
  args: string,
  status: 'in_progress' | 'completed' | 'incomplete',
): ResponseFunctionCallItem | ResponseCustomToolCallItem | ResponseToolSearchCallItem {
  if (ctx.toolSearchName !== undefined && chatName === ctx.toolSearchName) {
    return {
      type: 'tool_search_call',
      id: itemId('tsc', base, outputIndex),
      call_id: callId,
      execution: 'client',
      arguments: status === 'in_progress' ? {} : toolSearchArguments(args),
      status,
    };
  }
  const { namespace, name } = splitToolName(chatName, ctx.namespacedTools);
  if (ctx.customTools.has(chatName)) {
    const item: ResponseCustomToolCallItem = {
      type: 'custom_tool_call',
      id: itemId('ctc', base, outputIndex),
      status,
      call_id: callId,
      name,
      input: status === 'in_progress' ? '' : extractCustomToolInput(args),
    };
    if (namespace) item.namespace = namespace;
    return item;
  }
  const item: ResponseFunctionCallItem = {
    type: 'function_call',
    id: itemId('fc', base, outputIndex),
    status,
    call_id: callId,
    name,
    // Codex JSON-parses arguments; an argument-less call from a lax provider arrives as ''.
    arguments: status === 'in_progress' ? '' : args || '{}',
  };
  if (namespace) item.namespace = namespace;
  return item;
}

/**
 * Request settings echoed on every response object. `instructions` and `tools` are left out on purpose:
 * for Codex they are tens of KB and would be re-sent in response.created, in_progress and completed.
 */
export function echoedSettings(req: ResponsesRequest | undefined): Partial<ResponseObject> {
  const echo: Partial<ResponseObject> = {};
  if (!req) return echo;
  if (typeof req.parallel_tool_calls === 'boolean') echo.parallel_tool_calls = req.parallel_tool_calls;
  if (req.tool_choice !== undefined) echo.tool_choice = req.tool_choice;
  if (req.temperature !== undefined) echo.temperature = req.temperature;
  if (req.top_p !== undefined) echo.top_p = req.top_p;
  if (req.max_output_tokens !== undefined) echo.max_output_tokens = req.max_output_tokens;
  if (req.reasoning !== undefined) echo.reasoning = req.reasoning;
  if (req.text !== undefined) echo.text = req.text;
  if (typeof req.store === 'boolean') echo.store = req.store;
  if (req.previous_response_id !== undefined) echo.previous_response_id = req.previous_response_id;
  if (req.metadata !== undefined) echo.metadata = req.metadata;
  return echo;
}

export function buildResponseObject(
  ctx: Pick<ChatToResponsesContext, 'responseId' | 'model' | 'createdAt'>,
  echo: Partial<ResponseObject>,
  status: ResponseStatus,
  output: ResponseItem[],
  usage: NormalisedUsage | undefined,
  extra: { error?: ResponseError; incomplete?: IncompleteReason } = {},
): ResponseObject {
  return {
    ...echo,
    id: ctx.responseId,
    object: 'response',
    created_at: ctx.createdAt,
    status,
    model: ctx.model,
    output,
    usage: usage ? normalisedToResponsesUsage(usage) : null,
    error: extra.error ?? null,
    incomplete_details: extra.incomplete ? { reason: extra.incomplete } : null,
  };
}

/** A finished reasoning item: raw text as content; with `reasoningSummary` also as summary, blocks in encrypted_content. */
export function reasoningItem(
  ctx: Pick<ChatToResponsesContext, 'reasoningSummary'>,
  id: string,
  text: string,
  details: readonly unknown[] | undefined,
): ResponseReasoningItem {
  if (!ctx.reasoningSummary) return { type: 'reasoning', id, summary: [], content: [{ type: 'reasoning_text', text }] };
  const item: ResponseReasoningItem = {
    type: 'reasoning',
    id,
    summary: text ? [{ type: 'summary_text', text }] : [],
    content: text ? [{ type: 'reasoning_text', text }] : [],
  };
  if (details?.length) item.encrypted_content = encodeReasoningDetails(details);
  return item;
}

function contentToText(content: string | ChatContentPart[] | null | undefined): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const p of content) if (isObject(p) && p.type === 'text' && typeof p.text === 'string') text += p.text;
  return text;
}

/**
 * Non-streaming Chat Completion -> Responses API response object. The completion is provider JSON: fields
 * of the wrong type are treated as absent rather than trusted.
 */
export function chatCompletionToResponse(c: ChatCompletion, ctx: ChatToResponsesContext): ResponseObject {
  const base = idBase(ctx.responseId);
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- isObject guards Record<string, unknown>, not the element type
  const choices = (Array.isArray(c?.choices) ? c.choices : []).filter(isObject) as ChatCompletion['choices'];
  const choice = choices.find((ch) => (ch.index ?? 0) === 0) ?? choices[0];
  const msg = isObject(choice?.message) ? choice.message : undefined;
  const incomplete = incompleteReasonFor(typeof choice?.finish_reason === 'string' ? choice.finish_reason : null);
  const output: ResponseItem[] = [];

  if (msg) {
    const reasoning = typeof msg.reasoning === 'string' && msg.reasoning ? msg.reasoning : msg.reasoning_content;
    const details = ctx.reasoningSummary && Array.isArray(msg.reasoning_details) && msg.reasoning_details.length ? msg.reasoning_details : undefined;
    if (ctx.emitReasoning && ((typeof reasoning === 'string' && reasoning) || details)) {
      output.push(reasoningItem(ctx, itemId('rs', base, output.length), typeof reasoning === 'string' ? reasoning : '', details));
    }
    const text = contentToText(msg.content);
    const refusal = typeof msg.refusal === 'string' ? msg.refusal : '';
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- isObject guards Record<string, unknown>, not the element type
    const calls = (Array.isArray(msg.tool_calls) ? msg.tool_calls : []).filter(isObject) as NonNullable<typeof msg.tool_calls>;
    if (text || refusal) {
      const parts: (OutputTextPart | RefusalPart)[] = [];
      if (text) parts.push({ type: 'output_text', text, annotations: [] });
      if (refusal) parts.push({ type: 'refusal', refusal });
      output.push({
        type: 'message',
        id: itemId('msg', base, output.length),
        role: 'assistant',
        // Truncation hits the last item; text followed by tool calls was finished before them.
        status: incomplete && !calls.length ? 'incomplete' : 'completed',
        content: parts,
      });
    }
    for (let i = 0; i < calls.length; i++) {
      const tc = calls[i];
      const last = i === calls.length - 1;
      const fn = isObject(tc.function) ? tc.function : undefined;
      output.push(
        buildToolCallItem(
          ctx,
          base,
          output.length,
          typeof tc.id === 'string' && tc.id ? tc.id : `call_${base}_${i}`,
          typeof fn?.name === 'string' ? fn.name : '',
          typeof fn?.arguments === 'string' ? fn.arguments : '',
          incomplete && last ? 'incomplete' : 'completed',
        ),
      );
    }
  }

  const usage = isObject(c?.usage) ? chatUsageToNormalised(c.usage) : undefined;
  return buildResponseObject(ctx, echoedSettings(ctx.request), incomplete ? 'incomplete' : 'completed', output, usage, {
    incomplete,
  });
}
