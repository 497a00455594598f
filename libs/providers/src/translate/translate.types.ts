// Minimal structural wire types for the Responses <-> Chat Completions translation.
// Deliberately loose (optional fields, index signatures on request-side objects):
// clients and providers send fields we do not model and we must not choke on them.

// ───────────────────────────── Responses API (request side) ─────────────────────────────

export interface ResponsesInputText {
  type: 'input_text';
  text: string;
}
export interface ResponsesOutputText {
  type: 'output_text';
  text: string;
  annotations?: unknown[];
  logprobs?: unknown[];
}
export interface ResponsesRefusal {
  type: 'refusal';
  refusal: string;
}
export interface ResponsesInputImage {
  type: 'input_image';
  image_url?: string | null;
  file_id?: string | null;
  detail?: 'low' | 'high' | 'auto' | string;
}
export interface ResponsesInputFile {
  type: 'input_file';
  file_data?: string;
  file_id?: string | null;
  file_url?: string;
  filename?: string;
}
export type ResponsesContentPart = ResponsesInputText | ResponsesOutputText | ResponsesRefusal | ResponsesInputImage | ResponsesInputFile;

export interface ResponsesMessageItem {
  type?: 'message'; // EasyInputMessage omits `type`
  id?: string;
  role: 'user' | 'assistant' | 'system' | 'developer';
  content: string | ResponsesContentPart[];
  status?: string;
  phase?: string | null;
}
export interface ResponsesReasoningItem {
  type: 'reasoning';
  id?: string;
  summary?: { type: 'summary_text'; text: string }[];
  content?: { type: 'reasoning_text' | 'text'; text: string }[] | null;
  encrypted_content?: string | null;
  status?: string;
}
export interface ResponsesFunctionCallItem {
  type: 'function_call';
  id?: string;
  call_id: string;
  name: string;
  arguments: string;
  namespace?: string;
  status?: string;
}
/** `output` is a plain string or (tool returned images etc.) an array of content parts. */
export type ResponsesToolOutput = string | ResponsesContentPart[];
export interface ResponsesFunctionCallOutputItem {
  type: 'function_call_output';
  id?: string;
  call_id: string;
  output: ResponsesToolOutput;
  status?: string;
}
export interface ResponsesCustomToolCallItem {
  type: 'custom_tool_call';
  id?: string;
  call_id: string;
  name: string;
  input: string;
  namespace?: string;
  status?: string;
}
export interface ResponsesCustomToolCallOutputItem {
  type: 'custom_tool_call_output';
  id?: string;
  call_id: string;
  output: ResponsesToolOutput;
}
export interface ResponsesLocalShellCallItem {
  type: 'local_shell_call';
  id?: string;
  call_id?: string | null;
  status?: string;
  action: { type: 'exec'; command: string[]; [k: string]: unknown };
}
/** Any item type we do not translate (web_search_call, image_generation_call, compaction, ...). */
export interface ResponsesOtherItem {
  type: string;
  [k: string]: unknown;
}
export type ResponsesInputItem =
  | ResponsesMessageItem
  | ResponsesReasoningItem
  | ResponsesFunctionCallItem
  | ResponsesFunctionCallOutputItem
  | ResponsesCustomToolCallItem
  | ResponsesCustomToolCallOutputItem
  | ResponsesLocalShellCallItem
  | ResponsesOtherItem;

export interface ResponsesFunctionTool {
  type: 'function';
  name: string;
  description?: string | null;
  parameters?: Record<string, unknown> | null;
  strict?: boolean | null;
}
export interface ResponsesCustomTool {
  type: 'custom';
  name: string;
  description?: string;
  format?: { type: 'text' } | { type: 'grammar'; syntax: 'lark' | 'regex' | string; definition: string };
}
export interface ResponsesNamespaceTool {
  type: 'namespace';
  name: string;
  description?: string;
  tools: (ResponsesFunctionTool | ResponsesCustomTool)[];
}
export interface ResponsesOtherTool {
  type: string;
  [k: string]: unknown;
}
export type ResponsesTool = ResponsesFunctionTool | ResponsesCustomTool | ResponsesNamespaceTool | ResponsesOtherTool;

export type ResponsesToolChoice =
  'auto' | 'none' | 'required' | { type: 'function'; name: string } | { type: 'custom'; name: string } | { type: string; [k: string]: unknown };

export interface ResponsesTextFormat {
  type: 'text' | 'json_object' | 'json_schema' | string;
  name?: string;
  schema?: Record<string, unknown>;
  strict?: boolean | null;
  description?: string;
}

export interface ResponsesRequest {
  model: string;
  instructions?: string | null;
  input: string | ResponsesInputItem[];
  tools?: ResponsesTool[];
  tool_choice?: ResponsesToolChoice;
  parallel_tool_calls?: boolean | null;
  reasoning?: { effort?: string | null; summary?: string | null; [k: string]: unknown } | null;
  store?: boolean;
  stream?: boolean;
  include?: string[] | null;
  prompt_cache_key?: string;
  max_output_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  text?: { verbosity?: string | null; format?: ResponsesTextFormat | null } | null;
  previous_response_id?: string | null;
  metadata?: Record<string, string> | null;
  user?: string;
  service_tier?: string | null;
  [k: string]: unknown;
}

// ───────────────────────────── Responses API (response side) ─────────────────────────────

export interface OutputTextPart {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs?: unknown[];
}
export interface RefusalPart {
  type: 'refusal';
  refusal: string;
}
export interface ResponseMessageItem {
  type: 'message';
  id: string;
  role: 'assistant';
  status: 'in_progress' | 'completed' | 'incomplete';
  content: (OutputTextPart | RefusalPart)[];
}
export interface ResponseReasoningItem {
  type: 'reasoning';
  id: string;
  summary: { type: 'summary_text'; text: string }[];
  content?: { type: 'reasoning_text'; text: string }[];
  encrypted_content?: string | null;
  status?: 'in_progress' | 'completed' | 'incomplete';
}
export interface ResponseFunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  namespace?: string;
  status: 'in_progress' | 'completed' | 'incomplete';
}
export interface ResponseCustomToolCallItem {
  type: 'custom_tool_call';
  id: string;
  call_id: string;
  name: string;
  input: string;
  namespace?: string;
  status?: 'in_progress' | 'completed' | 'incomplete';
}
/** Codex's client-executed tool discovery call (`tool_search`): `arguments` is an object, not a JSON string. */
export interface ResponseToolSearchCallItem {
  type: 'tool_search_call';
  id: string;
  call_id: string;
  execution: 'client';
  arguments: Record<string, unknown>;
  status: 'in_progress' | 'completed' | 'incomplete';
}
export type ResponseItem = ResponseMessageItem | ResponseReasoningItem | ResponseFunctionCallItem | ResponseCustomToolCallItem | ResponseToolSearchCallItem;

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export interface ResponseError {
  code: string;
  message: string;
}

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete' | 'failed';

export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  status: ResponseStatus;
  model: string;
  output: ResponseItem[];
  usage: ResponsesUsage | null;
  error: ResponseError | null;
  incomplete_details: { reason: 'max_output_tokens' | 'content_filter' | string } | null;
  // Echoed request settings (subset; see echoedSettings in chat-to-responses.mapper.ts for why not instructions/tools).
  parallel_tool_calls?: boolean;
  tool_choice?: ResponsesToolChoice;
  temperature?: number | null;
  top_p?: number | null;
  max_output_tokens?: number | null;
  reasoning?: ResponsesRequest['reasoning'];
  text?: ResponsesRequest['text'];
  store?: boolean;
  previous_response_id?: string | null;
  metadata?: Record<string, string> | null;
}

// ───────────────────────────── Chat Completions ─────────────────────────────

export interface ChatTextPart {
  type: 'text';
  text: string;
}
export interface ChatImagePart {
  type: 'image_url';
  image_url: { url: string; detail?: string };
}
export interface ChatFilePart {
  type: 'file';
  file: { file_data?: string; file_id?: string; filename?: string };
}
export type ChatContentPart = ChatTextPart | ChatImagePart | ChatFilePart;

export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatSystemMessage {
  role: 'system';
  content: string;
}
export interface ChatUserMessage {
  role: 'user';
  content: string | ChatContentPart[];
}
export interface ChatAssistantMessage {
  role: 'assistant';
  content: string | null;
  tool_calls?: ChatToolCall[];
  /** Provider-specific reasoning passthrough (Ollama/OpenRouter: `reasoning`; vLLM/DeepSeek: `reasoning_content`). */
  reasoning?: string;
  reasoning_content?: string;
  /** OpenRouter's structured reasoning blocks, sent back verbatim (signatures, encrypted blocks). */
  reasoning_details?: unknown[];
}
export interface ChatToolMessage {
  role: 'tool';
  tool_call_id: string;
  content: string | ChatTextPart[];
}
export type ChatMessage = ChatSystemMessage | ChatUserMessage | ChatAssistantMessage | ChatToolMessage;

export interface ChatFunctionTool {
  type: 'function';
  function: {
    name: string;
    description?: string;
    parameters: Record<string, unknown>;
    strict?: boolean;
  };
}

export type ChatToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

export interface ChatResponseFormat {
  type: 'text' | 'json_object' | 'json_schema';
  json_schema?: { name: string; schema?: Record<string, unknown>; strict?: boolean; description?: string };
}

export interface ChatCompletionRequest {
  model: string;
  messages: ChatMessage[];
  tools?: ChatFunctionTool[];
  tool_choice?: ChatToolChoice;
  parallel_tool_calls?: boolean;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  response_format?: ChatResponseFormat;
  reasoning_effort?: string;
  stream?: boolean;
  stream_options?: { include_usage: boolean };
  user?: string;
  [k: string]: unknown;
}

/** Chat usage as providers send it (OpenAI shape + OpenRouter `cost`). */
export interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
  completion_tokens_details?: { reasoning_tokens?: number | null } | null;
  cost?: number | null;
  [k: string]: unknown;
}

export interface ChatCompletionMessage {
  role: 'assistant';
  content: string | ChatContentPart[] | null;
  refusal?: string | null;
  tool_calls?: { id?: string; type?: 'function'; function: { name: string; arguments: string } }[] | null;
  reasoning?: string | null;
  reasoning_content?: string | null;
  [k: string]: unknown;
}

export interface ChatCompletion {
  id: string;
  object?: 'chat.completion';
  created?: number;
  model?: string;
  choices: { index: number; message: ChatCompletionMessage; finish_reason: string | null }[];
  usage?: ChatUsage | null;
}

export interface ChatToolCallDelta {
  index?: number;
  id?: string | null;
  type?: 'function';
  function?: { name?: string | null; arguments?: string | null };
}

export interface ChatCompletionChunk {
  id?: string;
  object?: 'chat.completion.chunk';
  created?: number;
  model?: string;
  choices?: {
    index?: number;
    delta?: {
      role?: string;
      content?: string | null;
      refusal?: string | null;
      tool_calls?: ChatToolCallDelta[] | null;
      reasoning?: string | null;
      reasoning_content?: string | null;
      [k: string]: unknown;
    };
    finish_reason?: string | null;
  }[];
  usage?: ChatUsage | null;
}

// ───────────────────────────── Gateway-internal ─────────────────────────────

export interface NormalisedUsage {
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  /** Input tokens written to the prompt cache (billed at their own rate), when the provider reports them. */
  cacheWriteTokens?: number;
  costUsd?: number;
}

/** What a chat-side tool name stands for: a Responses `namespace` tool member, or a tool renamed for chat APIs. */
export interface NamespacedToolName {
  namespace?: string;
  name: string;
}
