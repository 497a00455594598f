import { isObject } from '@gw/common';
import { ToolNameMap } from './tool-names.util';
import { decodeReasoningDetails } from './reasoning-details.util';
import type {
  ChatAssistantMessage,
  ChatCompletionRequest,
  ChatContentPart,
  ChatFunctionTool,
  ChatImagePart,
  ChatMessage,
  ChatResponseFormat,
  ChatToolChoice,
  NamespacedToolName,
  ResponsesContentPart,
  ResponsesCustomTool,
  ResponsesCustomToolCallItem,
  ResponsesFunctionCallItem,
  ResponsesFunctionTool,
  ResponsesInputItem,
  ResponsesLocalShellCallItem,
  ResponsesMessageItem,
  ResponsesNamespaceTool,
  ResponsesReasoningItem,
  ResponsesRequest,
  ResponsesTool,
  ResponsesToolOutput,
} from './translate.types';

// Requests arrive as client JSON: the translation never assumes a shape it has not checked. Odd items,
// parts and tools are skipped or coerced rather than thrown on (the gateway validates the shapes it can
// name in a 400 before translating; this is the second line).

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function strOrUndefined(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}

/** Only the elements of an array that are objects; [] for anything that is not an array. */
function objects<T>(v: unknown): T[] {
  if (!Array.isArray(v)) return [];
  return v.filter(isObject) as unknown as T[];
}

export interface ResponsesToChatOptions {
  /**
   * Provider accepts prior reasoning on assistant messages (Ollama / OpenRouter `reasoning`,
   * vLLM / DeepSeek `reasoning_content`). Default false: reasoning items are dropped.
   */
  supportsReasoningContent?: boolean;
  /** Field that carries reasoning when `supportsReasoningContent`. Default `reasoning` (Ollama, OpenRouter). */
  reasoningField?: 'reasoning' | 'reasoning_content';
  /** Provider understands `reasoning_effort`. Default false: `reasoning.effort` is dropped. */
  supportsReasoningEffort?: boolean;
  /**
   * Carry what a chat body can hold beyond the common fields, for `fitChatRequest` to keep or drop per
   * provider: `prompt_cache_key`, `verbosity` (from `text.verbosity`), `service_tier`, and OpenRouter's
   * `reasoning_details` (from reasoning items the gateway made) on assistant messages. Default false.
   */
  carryExtras?: boolean;
}

export interface ResponsesToChatResult {
  chat: ChatCompletionRequest;
  /** Chat-side names of tools that were `custom` (free-text input) and got wrapped as function tools `{input: string}`. */
  customTools: Set<string>;
  /** Tool types the chat provider cannot run (web_search, local_shell, file_search, mcp, ...), left out. Unique, in request order. */
  droppedTools: string[];
  /** Chat-side name -> original (namespace?, name) for namespace members and tools renamed for chat APIs. */
  namespacedTools: Map<string, NamespacedToolName>;
  /** Chat-side name of Codex's `tool_search` tool (offered as a function), when the request has one. */
  toolSearchName?: string;
  /**
   * What this chat body does not carry, as bounded labels (`tools:web_search`, `input:item_reference`,
   * `prompt_cache_key`, `text.verbosity`, `service_tier`, `store`): reported to the client and in metrics.
   */
  dropped: string[];
}

/** Hosted tool types named in reports as themselves; any other type is `tools:other` (a bounded label set). */
const KNOWN_TOOL_TYPES = new Set([
  'web_search',
  'web_search_preview',
  'file_search',
  'code_interpreter',
  'image_generation',
  'mcp',
  'computer_use',
  'computer_use_preview',
  'local_shell',
  'shell',
  'apply_patch',
  'tool_search',
]);
/** Input item types a chat provider cannot replay; reported as `input:<type>`. */
const REPORTED_INPUT_TYPES = new Set([
  'web_search_call',
  'file_search_call',
  'image_generation_call',
  'code_interpreter_call',
  'computer_call',
  'computer_call_output',
  'mcp_call',
  'mcp_list_tools',
  'mcp_approval_request',
  'mcp_approval_response',
  'item_reference',
]);

export function droppedToolLabel(type: string): string {
  return `tools:${KNOWN_TOOL_TYPES.has(type) ? type : 'other'}`;
}

/** Description of the single `input` argument of a wrapped custom tool. */
export function customToolInputDescription(tool: ResponsesCustomTool): string {
  const f = tool.format;
  if (isObject(f) && f.type === 'grammar' && 'definition' in f) {
    return `The raw free-form text for this tool, passed verbatim as this string. ` + `It must conform to the following ${f.syntax} grammar:\n${f.definition}`;
  }
  return 'The raw free-form text for this tool, passed verbatim as this string.';
}

// Codex's free-form tool descriptions say "do not wrap the patch in JSON"; through Chat Completions the
// text has to travel inside the `input` argument, so the model is told so explicitly.
const CUSTOM_TOOL_NOTE = 'Call this tool with a single argument `input` whose value is the complete raw text (not JSON-wrapped inside the string).';

function customToFunction(name: string, tool: ResponsesCustomTool): ChatFunctionTool {
  const description = typeof tool.description === 'string' && tool.description ? `${tool.description}\n\n${CUSTOM_TOOL_NOTE}` : CUSTOM_TOOL_NOTE;
  return {
    type: 'function',
    function: {
      name,
      description,
      parameters: {
        type: 'object',
        properties: { input: { type: 'string', description: customToolInputDescription(tool) } },
        required: ['input'],
        additionalProperties: false,
      },
    },
  };
}

function functionToChat(name: string, tool: ResponsesFunctionTool): ChatFunctionTool {
  const fn: ChatFunctionTool['function'] = {
    name,
    // Some providers reject a tool without `parameters`; an empty object schema is the neutral value.
    parameters: isObject(tool.parameters) ? tool.parameters : { type: 'object', properties: {} },
  };
  if (typeof tool.description === 'string' && tool.description) fn.description = tool.description;
  if (typeof tool.strict === 'boolean') fn.strict = tool.strict;
  return { type: 'function', function: fn };
}

interface ToolMapping {
  tools: ChatFunctionTool[];
  customTools: Set<string>;
  droppedTools: string[];
  names: ToolNameMap;
  /** Chat names already in `tools`. */
  offered: Set<string>;
  toolSearchName?: string;
}

/** Codex's `tool_search` (client-executed) offered as a plain function; its calls come back as `tool_search_call`. */
function toolSearchToFunction(name: string, tool: Record<string, unknown>): ChatFunctionTool {
  const fn: ChatFunctionTool['function'] = {
    name,
    parameters: isObject(tool.parameters)
      ? tool.parameters
      : { type: 'object', properties: { query: { type: 'string' }, limit: { type: 'number' } }, required: ['query'] },
  };
  fn.description =
    typeof tool.description === 'string' && tool.description ? tool.description : 'Searches for more tools by a query and makes the matches callable.';
  return { type: 'function', function: fn };
}

function isClientToolSearch(t: Record<string, unknown>): boolean {
  return t.execution === undefined || t.execution === null || t.execution === 'client';
}

/** Adds the request's tools (and, later, tools a `tool_search_output` loaded) to the chat tool list. */
function addTools(out: ToolMapping, tools: unknown): void {
  const drop = (type: string): void => {
    if (!out.droppedTools.includes(type)) out.droppedTools.push(type);
  };
  const add = (namespace: string | undefined, member: ResponsesFunctionTool | ResponsesCustomTool): void => {
    if (typeof member.name !== 'string' || !member.name) return;
    const chat = out.names.chatName(namespace, member.name);
    if (out.offered.has(chat)) return; // the same tool offered twice (e.g. loaded again by a later search)
    out.offered.add(chat);
    if (member.type === 'custom') {
      out.customTools.add(chat);
      out.tools.push(customToFunction(chat, member));
    } else {
      out.tools.push(functionToChat(chat, member));
    }
  };
  for (const t of objects<ResponsesTool>(tools)) {
    if (t.type === 'function' || t.type === 'custom') {
      add(undefined, t as ResponsesFunctionTool | ResponsesCustomTool);
    } else if (t.type === 'namespace' && Array.isArray((t as ResponsesNamespaceTool).tools)) {
      const ns = t as ResponsesNamespaceTool;
      if (typeof ns.name !== 'string' || !ns.name) continue;
      for (const member of objects<ResponsesFunctionTool | ResponsesCustomTool>(ns.tools)) {
        if (member.type === 'custom' || member.type === 'function') add(ns.name, member);
        else drop(String((member as { type?: unknown }).type));
      }
    } else if (t.type === 'tool_search' && isClientToolSearch(t) && out.toolSearchName === undefined) {
      // Codex runs the search itself (execution "client"): the model only has to ask, like any function.
      out.toolSearchName = out.names.chatName(undefined, 'tool_search');
      out.offered.add(out.toolSearchName);
      out.tools.push(toolSearchToFunction(out.toolSearchName, t));
    } else {
      // Hosted tools (web_search, file_search, code_interpreter, image_generation, mcp, computer_use,
      // server-side tool_search, apply_patch, shell) and local_shell have no Chat Completions equivalent
      // that a plain chat provider executes, so they are left out (and reported) rather than faked.
      drop(String(t.type));
    }
  }
}

function mapTools(tools: unknown): ToolMapping {
  const out: ToolMapping = { tools: [], customTools: new Set(), droppedTools: [], names: new ToolNameMap(), offered: new Set() };
  addTools(out, tools);
  return out;
}

function mapToolChoice(choice: ResponsesRequest['tool_choice'], mapping: ToolMapping): ChatToolChoice | undefined {
  if (choice === undefined || choice === null) return undefined;
  if (choice === 'auto' || choice === 'none' || choice === 'required') return choice;
  if (isObject(choice) && (choice.type === 'function' || choice.type === 'custom')) {
    const name = (choice as { name?: unknown }).name;
    const ns = strOrUndefined((choice as { namespace?: unknown }).namespace);
    const chat = typeof name === 'string' && name ? mapping.names.chatName(ns, name) : '';
    if (chat && mapping.tools.some((t) => t.function.name === chat)) {
      return { type: 'function', function: { name: chat } };
    }
  }
  // Forcing a hosted tool we dropped (or an unknown choice shape) cannot be honoured; let the model pick.
  return 'auto';
}

function mapTextFormat(text: ResponsesRequest['text']): ChatResponseFormat | undefined {
  const f = isObject(text) ? text.format : undefined;
  if (!isObject(f)) return undefined;
  if (f.type === 'json_schema') {
    const js: NonNullable<ChatResponseFormat['json_schema']> = { name: typeof f.name === 'string' && f.name ? f.name : 'output' };
    if (isObject(f.schema)) js.schema = f.schema;
    if (typeof f.strict === 'boolean') js.strict = f.strict;
    if (typeof f.description === 'string' && f.description) js.description = f.description;
    return { type: 'json_schema', json_schema: js };
  }
  if (f.type === 'json_object') return { type: 'json_object' };
  return undefined; // 'text' is the chat default
}

// Multi-part messages are joined with a newline: parts are separate blocks (e.g. Codex's
// <environment_context> next to the user's text) and gluing them together would merge words.
function partsToText(parts: unknown): string {
  if (typeof parts === 'string') return parts;
  let text = '';
  let first = true;
  for (const p of objects<ResponsesContentPart>(parts)) {
    let t: unknown;
    if (p.type === 'input_text' || p.type === 'output_text') t = p.text;
    else if (p.type === 'refusal') t = p.refusal;
    if (typeof t !== 'string') continue;
    text = first ? t : `${text}\n${t}`;
    first = false;
  }
  return text;
}

function imagePart(p: { image_url?: string | null; file_id?: string | null; detail?: string }): ChatImagePart | undefined {
  const url = p.image_url;
  if (typeof url !== 'string' || !url) return undefined; // file_id images live in OpenAI's file store, which a chat provider cannot read
  const part: ChatImagePart = { type: 'image_url', image_url: { url } };
  // `original` (full resolution, Responses-only) is the most detail chat APIs know: `high`.
  if (typeof p.detail === 'string' && p.detail && p.detail !== 'auto') part.image_url.detail = p.detail === 'original' ? 'high' : p.detail;
  return part;
}

function userContent(content: unknown): string | ChatContentPart[] {
  if (typeof content === 'string') return content;
  const list = objects<ResponsesContentPart>(content);
  const rich = list.some((p) => p.type === 'input_image' || p.type === 'input_file');
  if (!rich) return partsToText(list);
  const parts: ChatContentPart[] = [];
  for (const p of list) {
    if (p.type === 'input_text' || p.type === 'output_text') {
      if (typeof p.text === 'string') parts.push({ type: 'text', text: p.text });
    } else if (p.type === 'refusal') {
      if (typeof p.refusal === 'string') parts.push({ type: 'text', text: p.refusal });
    } else if (p.type === 'input_image') {
      const img = imagePart(p);
      if (img) parts.push(img);
    } else if (p.type === 'input_file') {
      const file: { file_data?: string; file_id?: string; filename?: string } = {};
      if (typeof p.file_data === 'string' && p.file_data) file.file_data = p.file_data;
      if (typeof p.file_id === 'string' && p.file_id) file.file_id = p.file_id;
      if (typeof p.filename === 'string' && p.filename) file.filename = p.filename;
      parts.push({ type: 'file', file });
    }
  }
  return parts;
}

interface ToolOutputContent {
  text: string;
  images: ChatImagePart[];
}

function toolOutputContent(output: ResponsesToolOutput | undefined): ToolOutputContent {
  if (typeof output === 'string') return { text: output, images: [] };
  if (!Array.isArray(output)) return { text: output === undefined || output === null ? '' : (JSON.stringify(output) ?? ''), images: [] };
  const images: ChatImagePart[] = [];
  const texts: string[] = [];
  for (const p of objects<ResponsesContentPart>(output)) {
    if (p.type === 'input_text' || p.type === 'output_text') {
      if (typeof p.text === 'string') texts.push(p.text);
    } else if (p.type === 'input_image') {
      const img = imagePart(p);
      if (img) images.push(img);
    } else if (p.type === 'input_file') texts.push(`[file${typeof p.filename === 'string' && p.filename ? ` ${p.filename}` : ''}]`);
  }
  return { text: texts.join('\n'), images };
}

function reasoningText(item: ResponsesReasoningItem): string {
  // Raw reasoning (what open models produce and need back) beats the summary when both exist.
  const fromContent = objects<{ text?: unknown }>(item.content)
    .map((c) => str(c.text))
    .join('');
  if (fromContent) return fromContent;
  return objects<{ text?: unknown }>(item.summary)
    .map((s) => str(s.text))
    .join('\n');
}

function isMessage(item: unknown): item is ResponsesMessageItem {
  return isObject(item) && (item.type === 'message' || item.type === undefined) && typeof item.role === 'string';
}

/** Builds the chat message list; stateful because tool calls and outputs must be regrouped. */
class MessageBuilder {
  readonly messages: ChatMessage[] = [];
  /** Last assistant message, still open for tool calls (reset by any non-assistant message). */
  private openAssistant: ChatAssistantMessage | undefined;
  private readonly callIds = new Set<string>();
  private pendingImages: ChatImagePart[] = [];
  private pendingReasoning = '';
  private pendingDetails: unknown[] | undefined;

  constructor(
    private readonly reasoningField: 'reasoning' | 'reasoning_content' | undefined,
    private readonly namespacedNames: (namespace: string | undefined, name: string) => string,
  ) {}

  system(text: string): void {
    this.push({ role: 'system', content: text });
  }

  message(item: ResponsesMessageItem): void {
    const role = item.role;
    if (role === 'system' || role === 'developer') {
      this.system(partsToText(item.content));
    } else if (role === 'assistant') {
      const text = partsToText(item.content);
      const msg: ChatAssistantMessage = { role: 'assistant', content: text };
      this.push(msg);
      this.openAssistant = msg;
    } else {
      this.pendingReasoning = ''; // reasoning never crosses a user turn
      this.pendingDetails = undefined;
      this.push({ role: 'user', content: userContent(item.content) });
    }
  }

  reasoning(text: string, details?: unknown[]): void {
    if (!this.reasoningField) return;
    // Held until the next assistant message (or tool-call batch) of the same turn picks it up.
    this.pendingReasoning += text;
    if (details?.length) (this.pendingDetails ??= []).push(...details);
  }

  toolCall(id: string, name: string, args: string): void {
    this.flushImages();
    let msg = this.openAssistant;
    if (!msg) {
      msg = { role: 'assistant', content: null };
      this.push(msg);
      this.openAssistant = msg;
    } else {
      this.attachReasoning(msg);
    }
    (msg.tool_calls ??= []).push({ id, type: 'function', function: { name, arguments: args } });
    this.callIds.add(id);
  }

  toolOutput(callId: string, output: ResponsesToolOutput | undefined): void {
    const { text, images } = toolOutputContent(output);
    if (!this.callIds.has(callId)) {
      // Providers reject a tool message whose id no assistant tool_call announced (e.g. the call was a
      // hosted tool we dropped), so the output is kept as plain context instead of failing the request.
      this.push({ role: 'user', content: `Output of tool call ${callId}:\n${text}` });
      if (images.length) this.push({ role: 'user', content: images });
      return;
    }
    // An image-only output would leave an empty tool message, which some providers reject.
    const content = text || (images.length ? '[image output attached in the next message]' : '');
    this.messages.push({ role: 'tool', tool_call_id: callId, content });
    this.openAssistant = undefined;
    // Tool messages only carry text; images wait until the run of tool messages ends so that every
    // tool_call still gets its tool message directly after the assistant message.
    if (images.length) this.pendingImages.push(...images);
  }

  // A call without a string call_id cannot be paired with its output: it is left out.
  functionCall(item: ResponsesFunctionCallItem): void {
    if (typeof item.call_id !== 'string' || !item.call_id) return;
    const args: unknown = item.arguments;
    const text = typeof args === 'string' ? args : args === undefined || args === null ? '' : (JSON.stringify(args) ?? '');
    this.toolCall(item.call_id, this.namespacedNames(strOrUndefined(item.namespace), str(item.name)), text);
  }

  customToolCall(item: ResponsesCustomToolCallItem): void {
    if (typeof item.call_id !== 'string' || !item.call_id) return;
    this.toolCall(item.call_id, this.namespacedNames(strOrUndefined(item.namespace), str(item.name)), JSON.stringify({ input: str(item.input) }));
  }

  /** Codex's client-run tool search, replayed as a call of the `tool_search` function it was offered as. */
  toolSearchCall(item: Record<string, unknown>, chatName: string): void {
    if (typeof item.call_id !== 'string' || !item.call_id) return; // server-run searches have no call to pair
    const args = item.arguments;
    this.toolCall(item.call_id, chatName, typeof args === 'string' ? args : (JSON.stringify(isObject(args) ? args : {}) ?? '{}'));
  }

  localShellCall(item: ResponsesLocalShellCallItem): void {
    // Only reachable from history produced by another upstream; kept as a tool call so the model
    // still sees what ran and the matching function_call_output stays paired.
    const id = typeof item.call_id === 'string' && item.call_id ? item.call_id : typeof item.id === 'string' ? item.id : '';
    if (!id) return;
    this.toolCall(id, 'local_shell', JSON.stringify(isObject(item.action) ? item.action : {}));
  }

  finish(): ChatMessage[] {
    this.flushImages();
    return this.messages;
  }

  private push(msg: ChatMessage): void {
    if (msg.role !== 'tool') this.flushImages();
    if (msg.role === 'assistant') this.attachReasoning(msg);
    this.messages.push(msg);
    this.openAssistant = undefined;
  }

  private attachReasoning(msg: ChatAssistantMessage): void {
    if (!this.reasoningField) return;
    if (this.pendingDetails) {
      // OpenRouter's blocks go back verbatim (signatures, encrypted blocks): the provider checks them.
      (msg.reasoning_details ??= []).push(...this.pendingDetails);
      this.pendingDetails = undefined;
    }
    if (!this.pendingReasoning) return;
    const field = this.reasoningField;
    msg[field] = (msg[field] ?? '') + this.pendingReasoning;
    this.pendingReasoning = '';
  }

  private flushImages(): void {
    if (!this.pendingImages.length) return;
    const images = this.pendingImages;
    this.pendingImages = [];
    this.messages.push({ role: 'user', content: [{ type: 'text', text: 'Images returned by the tool calls above:' }, ...images] });
    this.openAssistant = undefined;
  }
}

/** The text a chat model reads for a `tool_search_output`: which tools it can call now (their schemas are in `tools`). */
function toolSearchOutputText(tools: unknown, names: ToolNameMap): string {
  const lines: string[] = [];
  const line = (namespace: string | undefined, t: { name?: unknown; description?: unknown }): void => {
    if (typeof t.name !== 'string' || !t.name) return;
    const d = typeof t.description === 'string' && t.description ? `: ${t.description.split('\n')[0]}` : '';
    lines.push(`- ${names.chatName(namespace, t.name)}${d}`);
  };
  for (const t of objects<ResponsesTool>(tools)) {
    if (t.type === 'namespace') for (const m of objects<{ name?: unknown }>((t as ResponsesNamespaceTool).tools)) line(str(t.name), m);
    else line(undefined, t as { name?: unknown; description?: unknown });
  }
  return lines.length ? `Tools found and now callable:\n${lines.join('\n')}` : 'No matching tools found.';
}

/**
 * Responses API request (what Codex sends) -> Chat Completions request.
 *
 * Decisions:
 * - `max_output_tokens` -> `max_tokens`: the field Ollama and OpenRouter both document
 *   (`max_completion_tokens` is OpenAI-only and Ollama ignores it).
 * - `prompt_cache_key`, `text.verbosity` (-> `verbosity`), `service_tier` are carried only with
 *   `carryExtras` (then `fitChatRequest` keeps what the provider takes); without it they are reported in
 *   `dropped`. `store: true` is reported (a chat provider stores nothing); `include`, `metadata`,
 *   `reasoning.summary` have no chat equivalent and need none (reasoning comes back as summary anyway).
 * - Reasoning items are dropped unless `supportsReasoningContent`; then the reasoning that follows the
 *   last user message is attached to the next assistant message (older turns' reasoning is discarded by
 *   model templates anyway and only costs tokens), with OpenRouter's `reasoning_details` when the item
 *   carries them (see reasoning-details.util.ts).
 * - Codex's client-run `tool_search` is a function; the tools a `tool_search_output` loaded join `tools`
 *   (under their chat names) so the model can call them, as the Responses API would let it.
 * - Tool names are made valid for chat APIs and mapped back exactly (`ToolNameMap`).
 */
export function responsesRequestToChat(req: ResponsesRequest, opts: ResponsesToChatOptions = {}): ResponsesToChatResult {
  const mapping = mapTools(req.tools);
  const reasoningField = opts.supportsReasoningContent ? (opts.reasoningField ?? 'reasoning') : undefined;
  const names = mapping.names;
  const b = new MessageBuilder(reasoningField, (namespace, name) => names.chatName(namespace, name));
  const dropped: string[] = [];
  const report = (label: string): void => {
    if (!dropped.includes(label)) dropped.push(label);
  };

  if (typeof req.instructions === 'string' && req.instructions) b.system(req.instructions);

  // Items that are not objects (null, numbers, …) are skipped, never dereferenced.
  const input: ResponsesInputItem[] = typeof req.input === 'string' ? [{ role: 'user', content: req.input }] : objects<ResponsesInputItem>(req.input);

  let lastUser = -1;
  if (reasoningField) {
    for (let i = 0; i < input.length; i++) {
      const it = input[i];
      if (isMessage(it) && it.role === 'user') lastUser = i;
    }
  }

  for (let i = 0; i < input.length; i++) {
    const item = input[i];
    if (isMessage(item)) {
      b.message(item);
      continue;
    }
    switch (item.type) {
      case 'reasoning':
        // Only read when it will be kept (reasoning passthrough on, after the last user message).
        if (reasoningField && i > lastUser) {
          const r = item as ResponsesReasoningItem;
          b.reasoning(reasoningText(r), opts.carryExtras ? decodeReasoningDetails(r.encrypted_content) : undefined);
        }
        break;
      case 'function_call':
        b.functionCall(item as ResponsesFunctionCallItem);
        break;
      case 'custom_tool_call':
        b.customToolCall(item as ResponsesCustomToolCallItem);
        break;
      case 'local_shell_call':
        b.localShellCall(item as ResponsesLocalShellCallItem);
        break;
      case 'tool_search_call':
        b.toolSearchCall(item, mapping.toolSearchName ?? names.chatName(undefined, 'tool_search'));
        break;
      case 'tool_search_output': {
        const o = item as { call_id?: unknown; tools?: unknown };
        if (typeof o.call_id !== 'string' || !o.call_id) break; // server-run search: nothing the chat model asked for
        addTools(mapping, o.tools);
        b.toolOutput(o.call_id, toolSearchOutputText(o.tools, names));
        break;
      }
      case 'function_call_output':
      case 'custom_tool_call_output':
      case 'local_shell_call_output': {
        const o = item as { call_id?: unknown; output?: ResponsesToolOutput };
        if (typeof o.call_id === 'string') b.toolOutput(o.call_id, o.output);
        break;
      }
      default:
        // web_search_call, image_generation_call, item_reference, ...: executed (or stored) by OpenAI's
        // servers; a chat provider has nothing to replay them against.
        if (REPORTED_INPUT_TYPES.has(String(item.type))) report(`input:${String(item.type)}`);
        break;
    }
  }

  const chat: ChatCompletionRequest = { model: str(req.model), messages: b.finish() };

  if (mapping.tools.length) {
    chat.tools = mapping.tools;
    const choice = mapToolChoice(req.tool_choice, mapping);
    if (choice !== undefined) chat.tool_choice = choice;
    if (typeof req.parallel_tool_calls === 'boolean') chat.parallel_tool_calls = req.parallel_tool_calls;
  }
  if (typeof req.max_output_tokens === 'number') chat.max_tokens = req.max_output_tokens;
  if (typeof req.temperature === 'number') chat.temperature = req.temperature;
  if (typeof req.top_p === 'number') chat.top_p = req.top_p;
  const responseFormat = mapTextFormat(req.text);
  if (responseFormat) chat.response_format = responseFormat;
  const effort = isObject(req.reasoning) ? req.reasoning.effort : undefined;
  if (typeof effort === 'string' && effort) {
    if (opts.supportsReasoningEffort) chat.reasoning_effort = effort;
    else report('reasoning.effort');
  }
  const verbosity = isObject(req.text) ? req.text.verbosity : undefined;
  const extras: [string, string, unknown][] = [
    ['prompt_cache_key', 'prompt_cache_key', req.prompt_cache_key],
    ['verbosity', 'text.verbosity', verbosity],
    ['service_tier', 'service_tier', req.service_tier],
  ];
  for (const [field, label, v] of extras) {
    // `auto`/`default` service tiers ask for nothing special: nothing is lost without them.
    if (typeof v !== 'string' || !v || (field === 'service_tier' && (v === 'auto' || v === 'default'))) continue;
    if (opts.carryExtras) chat[field] = v;
    else report(label);
  }
  if (req.store === true) report('store');
  for (const t of mapping.droppedTools) report(droppedToolLabel(t));

  chat.stream = req.stream === true;
  // Usage arrives only in a final chunk, and only when asked for; metering needs it.
  if (chat.stream) chat.stream_options = { include_usage: true };

  return {
    chat,
    customTools: mapping.customTools,
    droppedTools: mapping.droppedTools,
    namespacedTools: names.renamed,
    toolSearchName: mapping.toolSearchName,
    dropped,
  };
}
