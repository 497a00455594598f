import { isObject } from '@gw/common';
import {
  buildResponseObject,
  buildToolCallItem,
  type ChatToResponsesContext,
  echoedSettings,
  idBase,
  incompleteReasonFor,
  itemId,
  reasoningItem,
} from './chat-to-responses.mapper';
import { mergeReasoningDetails } from './reasoning-details.util';
import { sseFrame } from './sse.util';
import type { ChatCompletionChunk, ChatToolCallDelta, NormalisedUsage, OutputTextPart, ResponseError, ResponseItem, ResponseObject } from './translate.types';
import { chatUsageToNormalised } from './usage.mapper';

type ItemStatus = 'completed' | 'incomplete';

interface ToolCallState {
  /** Tool call id as the provider sent it (undefined until it does). */
  providerId: string | undefined;
  callId: string;
  name: string;
  /** Raw accumulated arguments; appended per chunk, parsed at most once (at finish, custom tools only). */
  args: string;
  /** -1 until `output_item.added` was emitted (needs the name). */
  outputIndex: number;
  itemId: string;
  /** Arguments are not streamed: custom tools (input recovered at finish) and tool_search (an object at finish). */
  custom: boolean;
}

/**
 * Incremental Chat Completions stream -> Responses API SSE frames.
 *
 * One instance per response. `push()` runs once per upstream chunk, so it only appends to strings and
 * serialises the small event objects it emits; accumulated arguments are never re-parsed per chunk.
 *
 * Item layout: reasoning (opt-in) and text become their own output items in the order they appear; a
 * tool call becomes an item as soon as its name is known. Starting a tool call closes the open text
 * item, so "text, then tool calls" yields message first, then function_call items. Tool calls stay open
 * until `finish()` because parallel calls interleave their argument chunks (keyed by chat `index`).
 *
 * Custom (free-form) tools: the chat model returns `{"input": "..."}`; the raw input can only be
 * recovered safely from the complete JSON, so `custom_tool_call_input.delta` (one, whole) and `.done`
 * are emitted at finish.
 *
 * Provider reasoning deltas (`reasoning`, `reasoning_content`) are dropped unless `ctx.emitReasoning`.
 * Refusal deltas are streamed as ordinary text, since Codex renders only output_text.
 */
export class ChatToResponsesStream {
  private seq = 0;
  private nextOutputIndex = 0;
  private started = false;
  private closed = false;
  private readonly base: string;
  private readonly echo: Partial<ResponseObject>;
  /** Finished items by output_index. */
  private readonly slots: (ResponseItem | undefined)[] = [];
  private finishReason: string | null = null;
  private lastUsage: NormalisedUsage | undefined;

  private msgIndex = -1;
  private msgId = '';
  private msgText = '';

  private rsIndex = -1;
  private rsId = '';
  private rsText = '';
  /** OpenRouter's `reasoning_details` of the open reasoning item, merged per block (reasoningSummary only). */
  private rsDetails: Record<string, unknown>[] = [];

  private readonly tools: ToolCallState[] = [];
  private readonly toolsByIndex = new Map<number, ToolCallState>();
  private lastTool: ToolCallState | undefined;

  constructor(private readonly ctx: ChatToResponsesContext) {
    this.base = idBase(ctx.responseId);
    this.echo = echoedSettings(ctx.request);
  }

  /** Usage from the provider's usage chunk (requires `stream_options.include_usage`), if one arrived. */
  get usage(): NormalisedUsage | undefined {
    return this.lastUsage;
  }

  /** Items whose `output_item.done` has been emitted, in output_index order. */
  get output(): ResponseItem[] {
    const items: ResponseItem[] = [];
    for (const it of this.slots) if (it) items.push(it);
    return items;
  }

  /** `response.created` + `response.in_progress`. Called implicitly by push/finish/fail if skipped. */
  start(): string[] {
    if (this.started) return [];
    this.started = true;
    const response = buildResponseObject(this.ctx, this.echo, 'in_progress', [], undefined);
    return [
      sseFrame('response.created', { type: 'response.created', sequence_number: this.seq++, response }),
      sseFrame('response.in_progress', { type: 'response.in_progress', sequence_number: this.seq++, response }),
    ];
  }

  /** One upstream chunk (provider JSON: anything not of the expected shape is skipped, never thrown on). */
  push(chunk: ChatCompletionChunk): string[] {
    if (this.closed) return [];
    const out = this.started ? [] : this.start();
    if (!isObject(chunk)) return out;
    if (isObject(chunk.usage)) this.lastUsage = chatUsageToNormalised(chunk.usage);
    const choices = chunk.choices;
    if (!Array.isArray(choices)) return out;
    for (const choice of choices) {
      if (!isObject(choice)) continue;
      // n > 1 is never requested; ignore stray extra choices instead of mixing them into one response.
      if (choice.index !== undefined && choice.index !== null && choice.index !== 0) continue;
      const d = choice.delta;
      if (isObject(d)) {
        const reasoning = typeof d.reasoning === 'string' && d.reasoning ? d.reasoning : d.reasoning_content;
        const details = this.ctx.reasoningSummary && Array.isArray(d.reasoning_details) && d.reasoning_details.length ? d.reasoning_details : undefined;
        if ((typeof reasoning === 'string' && reasoning) || details) this.onReasoning(typeof reasoning === 'string' ? reasoning : '', details, out);
        if (typeof d.content === 'string' && d.content) this.onText(d.content, out);
        if (typeof d.refusal === 'string' && d.refusal) this.onText(d.refusal, out);
        const calls = d.tool_calls;
        if (Array.isArray(calls)) for (const tc of calls) if (isObject(tc)) this.onToolCall(tc, out);
      }
      if (typeof choice.finish_reason === 'string' && choice.finish_reason) this.finishReason = choice.finish_reason;
    }
    return out;
  }

  /**
   * Closes every open item (…done events, output_item.done), then `response.completed` with usage — or
   * `response.incomplete` (status 'incomplete', incomplete_details.reason) when the provider stopped on
   * finish_reason `length` / `content_filter`.
   */
  finish(): string[] {
    if (this.closed) return [];
    const out = this.started ? [] : this.start();
    this.closed = true;
    const incomplete = incompleteReasonFor(this.finishReason);

    // A call whose name never arrived is still surfaced (with an empty name) rather than silently lost.
    for (const st of this.tools) if (st.outputIndex < 0) this.announce(st, out);
    // Truncation (finish_reason length/content_filter) cuts off whatever was generated last.
    const lastIndex = this.nextOutputIndex - 1;
    const statusOf = (idx: number): ItemStatus => (incomplete && idx === lastIndex ? 'incomplete' : 'completed');

    if (this.rsIndex >= 0) this.closeReasoning(out);
    if (this.msgIndex >= 0) this.closeMessage(out, statusOf(this.msgIndex));

    const tools = this.tools.length > 1 ? [...this.tools].sort((a, b) => a.outputIndex - b.outputIndex) : this.tools;
    for (const st of tools) {
      const status = statusOf(st.outputIndex);
      const item = buildToolCallItem(this.ctx, this.base, st.outputIndex, st.callId, st.name, st.args, status);
      if (item.type === 'tool_search_call') {
        // Nothing but the item itself: Codex reads a search's arguments from output_item.done.
      } else if (item.type === 'custom_tool_call') {
        if (item.input) {
          out.push(
            sseFrame('response.custom_tool_call_input.delta', {
              type: 'response.custom_tool_call_input.delta',
              sequence_number: this.seq++,
              item_id: st.itemId,
              output_index: st.outputIndex,
              delta: item.input,
            }),
          );
        }
        out.push(
          sseFrame('response.custom_tool_call_input.done', {
            type: 'response.custom_tool_call_input.done',
            sequence_number: this.seq++,
            item_id: st.itemId,
            output_index: st.outputIndex,
            input: item.input,
          }),
        );
      } else {
        out.push(
          sseFrame('response.function_call_arguments.done', {
            type: 'response.function_call_arguments.done',
            sequence_number: this.seq++,
            item_id: st.itemId,
            output_index: st.outputIndex,
            arguments: item.arguments,
          }),
        );
      }
      this.slots[st.outputIndex] = item;
      out.push(this.itemDone(st.outputIndex, item));
    }

    const response = buildResponseObject(this.ctx, this.echo, incomplete ? 'incomplete' : 'completed', this.output, this.lastUsage, { incomplete });
    // Truncation ends with `response.incomplete`, as the Responses API does; Codex 0.169 reports it as
    // "Incomplete response returned, reason: max_output_tokens" instead of acting on cut-off output.
    const type = incomplete ? 'response.incomplete' : 'response.completed';
    out.push(sseFrame(type, { type, sequence_number: this.seq++, response }));
    return out;
  }

  /**
   * Upstream broke mid-stream: `response.failed` with `response.error`. Open items are not closed — the
   * client must not act on half-received tool calls. Codex keys retry behaviour off `error.code`
   * (`rate_limit_exceeded`, `context_length_exceeded`, `insufficient_quota`, ...).
   */
  fail(error: ResponseError): string[] {
    if (this.closed) return [];
    const out = this.started ? [] : this.start();
    this.closed = true;
    const response = buildResponseObject(this.ctx, this.echo, 'failed', this.output, this.lastUsage, {
      error: { code: error.code, message: error.message },
    });
    out.push(sseFrame('response.failed', { type: 'response.failed', sequence_number: this.seq++, response }));
    return out;
  }

  // ───────────────────────────── text ─────────────────────────────

  private onText(delta: string, out: string[]): void {
    if (this.rsIndex >= 0) this.closeReasoning(out);
    if (this.msgIndex < 0) {
      this.msgIndex = this.nextOutputIndex++;
      this.msgId = itemId('msg', this.base, this.msgIndex);
      this.msgText = '';
      out.push(
        sseFrame('response.output_item.added', {
          type: 'response.output_item.added',
          sequence_number: this.seq++,
          output_index: this.msgIndex,
          item: { id: this.msgId, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
        }),
        sseFrame('response.content_part.added', {
          type: 'response.content_part.added',
          sequence_number: this.seq++,
          item_id: this.msgId,
          output_index: this.msgIndex,
          content_index: 0,
          part: { type: 'output_text', text: '', annotations: [] },
        }),
      );
    }
    this.msgText += delta;
    out.push(
      sseFrame('response.output_text.delta', {
        type: 'response.output_text.delta',
        sequence_number: this.seq++,
        item_id: this.msgId,
        output_index: this.msgIndex,
        content_index: 0,
        delta,
        logprobs: [],
      }),
    );
  }

  private closeMessage(out: string[], status: ItemStatus): void {
    const idx = this.msgIndex;
    const text = this.msgText;
    const part: OutputTextPart = { type: 'output_text', text, annotations: [] };
    out.push(
      sseFrame('response.output_text.done', {
        type: 'response.output_text.done',
        sequence_number: this.seq++,
        item_id: this.msgId,
        output_index: idx,
        content_index: 0,
        text,
        logprobs: [],
      }),
      sseFrame('response.content_part.done', {
        type: 'response.content_part.done',
        sequence_number: this.seq++,
        item_id: this.msgId,
        output_index: idx,
        content_index: 0,
        part,
      }),
    );
    const item: ResponseItem = { id: this.msgId, type: 'message', status, role: 'assistant', content: [part] };
    this.slots[idx] = item;
    out.push(this.itemDone(idx, item));
    this.msgIndex = -1;
    this.msgText = '';
  }

  // ───────────────────────────── reasoning ─────────────────────────────

  private onReasoning(delta: string, details: unknown[] | undefined, out: string[]): void {
    if (!this.ctx.emitReasoning) return;
    if (this.msgIndex >= 0) this.closeMessage(out, 'completed');
    if (this.rsIndex < 0) {
      this.rsIndex = this.nextOutputIndex++;
      this.rsId = itemId('rs', this.base, this.rsIndex);
      this.rsText = '';
      this.rsDetails = [];
      out.push(
        sseFrame('response.output_item.added', {
          type: 'response.output_item.added',
          sequence_number: this.seq++,
          output_index: this.rsIndex,
          item: { id: this.rsId, type: 'reasoning', summary: [], content: [] },
        }),
      );
    }
    if (details) mergeReasoningDetails(this.rsDetails, details);
    if (!delta) return;
    if (this.ctx.reasoningSummary) {
      // Codex shows reasoning from the summary events (raw reasoning_text only with show_raw_agent_reasoning).
      if (!this.rsText) {
        out.push(
          sseFrame('response.reasoning_summary_part.added', {
            type: 'response.reasoning_summary_part.added',
            sequence_number: this.seq++,
            item_id: this.rsId,
            output_index: this.rsIndex,
            summary_index: 0,
            part: { type: 'summary_text', text: '' },
          }),
        );
      }
      this.rsText += delta;
      out.push(
        sseFrame('response.reasoning_summary_text.delta', {
          type: 'response.reasoning_summary_text.delta',
          sequence_number: this.seq++,
          item_id: this.rsId,
          output_index: this.rsIndex,
          summary_index: 0,
          delta,
        }),
      );
      return;
    }
    this.rsText += delta;
    out.push(
      sseFrame('response.reasoning_text.delta', {
        type: 'response.reasoning_text.delta',
        sequence_number: this.seq++,
        item_id: this.rsId,
        output_index: this.rsIndex,
        content_index: 0,
        delta,
      }),
    );
  }

  private closeReasoning(out: string[]): void {
    const idx = this.rsIndex;
    const text = this.rsText;
    if (!this.ctx.reasoningSummary) {
      out.push(
        sseFrame('response.reasoning_text.done', {
          type: 'response.reasoning_text.done',
          sequence_number: this.seq++,
          item_id: this.rsId,
          output_index: idx,
          content_index: 0,
          text,
        }),
      );
    } else if (text) {
      out.push(
        sseFrame('response.reasoning_summary_text.done', {
          type: 'response.reasoning_summary_text.done',
          sequence_number: this.seq++,
          item_id: this.rsId,
          output_index: idx,
          summary_index: 0,
          text,
        }),
        sseFrame('response.reasoning_summary_part.done', {
          type: 'response.reasoning_summary_part.done',
          sequence_number: this.seq++,
          item_id: this.rsId,
          output_index: idx,
          summary_index: 0,
          part: { type: 'summary_text', text },
        }),
      );
    }
    const item: ResponseItem = reasoningItem(this.ctx, this.rsId, text, this.rsDetails.length ? this.rsDetails : undefined);
    this.rsDetails = [];
    this.slots[idx] = item;
    out.push(this.itemDone(idx, item));
    this.rsIndex = -1;
    this.rsText = '';
  }

  // ───────────────────────────── tool calls ─────────────────────────────

  private onToolCall(tc: ChatToolCallDelta, out: string[]): void {
    const id = typeof tc.id === 'string' && tc.id ? tc.id : undefined;
    let st: ToolCallState | undefined;
    if (typeof tc.index === 'number') {
      st = this.toolsByIndex.get(tc.index);
      // Some OpenAI-compatible servers reuse index 0 for every parallel call; a different id means a new call.
      if (st && id && st.providerId && id !== st.providerId) st = undefined;
    } else if (id) {
      st = this.tools.find((t) => t.providerId === id);
    } else {
      st = this.lastTool; // index-less continuation chunk
    }
    if (!st) {
      st = {
        providerId: id,
        callId: id ?? `call_${this.base}_${this.tools.length}`,
        name: '',
        args: '',
        outputIndex: -1,
        itemId: '',
        custom: false,
      };
      this.tools.push(st);
      if (typeof tc.index === 'number') this.toolsByIndex.set(tc.index, st);
    } else if (id && !st.providerId) {
      st.providerId = id;
      if (st.outputIndex < 0) st.callId = id;
    }
    this.lastTool = st;

    const fn = isObject(tc.function) ? tc.function : undefined;
    if (fn) {
      if (typeof fn.name === 'string' && fn.name && st.outputIndex < 0) st.name = fn.name;
      const a = fn.arguments;
      if (typeof a === 'string' && a) {
        st.args += a;
        if (st.outputIndex >= 0 && !st.custom) {
          out.push(
            sseFrame('response.function_call_arguments.delta', {
              type: 'response.function_call_arguments.delta',
              sequence_number: this.seq++,
              item_id: st.itemId,
              output_index: st.outputIndex,
              delta: a,
            }),
          );
        }
      }
    }
    if (st.outputIndex < 0 && st.name) this.announce(st, out);
  }

  /** Emits `output_item.added` for a tool call (plus any arguments that arrived before its name). */
  private announce(st: ToolCallState, out: string[]): void {
    if (this.rsIndex >= 0) this.closeReasoning(out);
    if (this.msgIndex >= 0) this.closeMessage(out, 'completed');
    st.outputIndex = this.nextOutputIndex++;
    st.custom = this.ctx.customTools.has(st.name) || (this.ctx.toolSearchName !== undefined && st.name === this.ctx.toolSearchName);
    const item = buildToolCallItem(this.ctx, this.base, st.outputIndex, st.callId, st.name, '', 'in_progress');
    st.itemId = item.id;
    out.push(
      sseFrame('response.output_item.added', {
        type: 'response.output_item.added',
        sequence_number: this.seq++,
        output_index: st.outputIndex,
        item,
      }),
    );
    if (!st.custom && st.args) {
      out.push(
        sseFrame('response.function_call_arguments.delta', {
          type: 'response.function_call_arguments.delta',
          sequence_number: this.seq++,
          item_id: st.itemId,
          output_index: st.outputIndex,
          delta: st.args,
        }),
      );
    }
  }

  private itemDone(outputIndex: number, item: ResponseItem): string {
    return sseFrame('response.output_item.done', {
      type: 'response.output_item.done',
      sequence_number: this.seq++,
      output_index: outputIndex,
      item,
    });
  }
}
