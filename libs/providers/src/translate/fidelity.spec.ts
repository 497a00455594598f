import { ChatToResponsesStream } from './chat-to-responses.stream';
import { chatCompletionToResponse, type ChatToResponsesContext } from './chat-to-responses.mapper';
import { fitChatRequest } from './chat-profile';
import { decodeReasoningDetails, encodeReasoningDetails, isGatewayReasoning, mergeReasoningDetails, withoutGatewayReasoning } from './reasoning-details.util';
import { responsesRequestToChat, type ResponsesToChatOptions } from './responses-to-chat.mapper';
import { ToolNameMap } from './tool-names.util';
import type { ChatAssistantMessage, ChatCompletion, ChatCompletionChunk, ResponsesRequest } from './translate.types';

// What the gateway's translator asks for (responses-from-chat.translator.ts).
const FULL: ResponsesToChatOptions = { supportsReasoningContent: true, reasoningField: 'reasoning', supportsReasoningEffort: true, carryExtras: true };

interface Ev {
  type: string;
  [k: string]: any;
}
const parse = (frames: string[]): Ev[] => frames.map((f) => JSON.parse(/\ndata: (.+)\n\n$/.exec(f)![1]) as Ev);
const chunk = (delta: Record<string, unknown>, finish_reason: string | null = null): ChatCompletionChunk => ({ choices: [{ index: 0, delta, finish_reason }] });
function stream(chunks: ChatCompletionChunk[], ctx: ChatToResponsesContext): { events: Ev[]; s: ChatToResponsesStream } {
  const s = new ChatToResponsesStream(ctx);
  const frames = [...s.start()];
  for (const c of chunks) frames.push(...s.push(c));
  frames.push(...s.finish());
  return { events: parse(frames), s };
}
const ctx = (over: Partial<ChatToResponsesContext> = {}): ChatToResponsesContext => ({
  responseId: 'resp_f',
  model: 'm',
  createdAt: 1,
  customTools: new Set(),
  emitReasoning: true,
  reasoningSummary: true,
  ...over,
});

// Codex 0.169's tool_search tool and the items of one search round (captured from the pinned binary).
const TOOL_SEARCH = {
  type: 'tool_search',
  execution: 'client',
  description: '# Tool discovery\n\nSearches over deferred tool metadata.',
  parameters: { type: 'object', properties: { limit: { type: 'number' }, query: { type: 'string' } }, required: ['query'], additionalProperties: false },
};
const SEARCH_CALL = {
  type: 'tool_search_call',
  id: 'tsc_1',
  call_id: 'search-1',
  status: 'completed',
  execution: 'client',
  arguments: { query: 'lookup fact', limit: 3 },
};
const SEARCH_OUTPUT = {
  type: 'tool_search_output',
  call_id: 'search-1',
  status: 'completed',
  execution: 'client',
  tools: [
    {
      type: 'namespace',
      name: 'mcp__facts',
      description: 'Tools in the mcp__facts namespace.',
      tools: [
        {
          type: 'function',
          name: 'lookup_fact',
          description: 'Looks up a fact by key.',
          strict: false,
          defer_loading: true,
          parameters: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] },
        },
      ],
    },
  ],
};

describe('tool names valid for chat APIs, mapped back exactly', () => {
  it('keeps valid names, cleans bad characters, shortens long names with a hash, never gives two tools one name', () => {
    const m = new ToolNameMap();
    expect(m.chatName(undefined, 'exec_command')).toBe('exec_command');
    expect(m.chatName('mcp__facts', 'lookup_fact')).toBe('mcp__facts__lookup_fact');
    const dotted = m.chatName(undefined, 'github.search issues');
    expect(dotted).toBe('github_search_issues');
    const clash = m.chatName(undefined, 'github_search_issues'); // the cleaned name is taken
    expect(clash).not.toBe(dotted);
    const long = m.chatName('mcp__a_very_long_server_name_for_testing', 'and_an_even_longer_tool_name_that_goes_on_and_on');
    for (const n of [dotted, clash, long]) expect(n).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(m.chatName(undefined, 'github.search issues')).toBe(dotted); // stable within the request
    expect(m.renamed.get(dotted)).toEqual({ name: 'github.search issues' });
    expect(m.renamed.get(long)).toEqual({ namespace: 'mcp__a_very_long_server_name_for_testing', name: 'and_an_even_longer_tool_name_that_goes_on_and_on' });
    expect(m.renamed.has('exec_command')).toBe(false);
  });

  it('request → chat → response: a renamed tool is called back under its own name', () => {
    const r = responsesRequestToChat({ model: 'm', input: 'x', tools: [{ type: 'function', name: 'files/read', parameters: { type: 'object' } }] }, FULL);
    const chatName = r.chat.tools![0].function.name;
    expect(chatName).toBe('files_read');
    const answer: ChatCompletion = {
      id: 'c',
      choices: [
        {
          index: 0,
          finish_reason: 'tool_calls',
          message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: chatName, arguments: '{}' } }] },
        },
      ],
    };
    const out = chatCompletionToResponse(answer, ctx({ namespacedTools: r.namespacedTools }));
    expect(out.output[0]).toMatchObject({ type: 'function_call', name: 'files/read', call_id: 'call_1' });
    expect(out.output[0]).not.toHaveProperty('namespace');
  });
});

describe('tool_search', () => {
  const req = {
    model: 'm',
    tools: [{ type: 'function', name: 'exec_command', parameters: { type: 'object' } }, TOOL_SEARCH, { type: 'web_search' }],
    input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'look up the fact' }] }, SEARCH_CALL, SEARCH_OUTPUT],
  } as unknown as ResponsesRequest;

  it('request: offered as a function; the call and its output replayed as a tool call + tool message; found tools become callable', () => {
    const r = responsesRequestToChat(req, FULL);
    expect(r.toolSearchName).toBe('tool_search');
    expect(r.chat.tools!.map((t) => t.function.name)).toEqual(['exec_command', 'tool_search', 'mcp__facts__lookup_fact']);
    expect(r.chat.tools![1].function.parameters).toEqual(TOOL_SEARCH.parameters);
    const asst = r.chat.messages.find((m) => m.role === 'assistant')!;
    expect(asst.tool_calls).toEqual([
      { id: 'search-1', type: 'function', function: { name: 'tool_search', arguments: JSON.stringify(SEARCH_CALL.arguments) } },
    ]);
    const tool = r.chat.messages.find((m) => m.role === 'tool')!;
    expect(tool.tool_call_id).toBe('search-1');
    expect(tool.content).toContain('mcp__facts__lookup_fact: Looks up a fact by key.');
    expect(r.namespacedTools.get('mcp__facts__lookup_fact')).toEqual({ namespace: 'mcp__facts', name: 'lookup_fact' });
    expect(r.dropped).toEqual(['tools:web_search']);
  });

  it('response: a call of the function is a tool_search_call with object arguments (non-stream)', () => {
    const answer: ChatCompletion = {
      id: 'c',
      choices: [
        {
          index: 0,
          finish_reason: 'tool_calls',
          message: {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'call_s', type: 'function', function: { name: 'tool_search', arguments: '{"query":"calendar","limit":2}' } }],
          },
        },
      ],
    };
    const out = chatCompletionToResponse(answer, ctx({ toolSearchName: 'tool_search' }));
    expect(out.output).toEqual([
      { type: 'tool_search_call', id: 'tsc_f_0', call_id: 'call_s', execution: 'client', arguments: { query: 'calendar', limit: 2 }, status: 'completed' },
    ]);
  });

  it('response: streamed, no argument deltas; the done item carries the parsed arguments', () => {
    const { events, s } = stream(
      [
        chunk({ tool_calls: [{ index: 0, id: 'call_s', type: 'function', function: { name: 'tool_search', arguments: '' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"query":' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '"fact"}' } }] }),
        chunk({}, 'tool_calls'),
      ],
      ctx({ toolSearchName: 'tool_search' }),
    );
    expect(events.some((e) => e.type.startsWith('response.function_call_arguments'))).toBe(false);
    const added = events.find((e) => e.type === 'response.output_item.added')!;
    expect(added.item).toMatchObject({ type: 'tool_search_call', call_id: 'call_s', arguments: {}, status: 'in_progress' });
    const done = events.find((e) => e.type === 'response.output_item.done')!;
    expect(done.item).toEqual({
      type: 'tool_search_call',
      id: 'tsc_f_0',
      call_id: 'call_s',
      execution: 'client',
      arguments: { query: 'fact' },
      status: 'completed',
    });
    expect(s.output).toEqual([done.item]);
  });

  it('a call of a loaded MCP tool goes back to Codex with its namespace', () => {
    const r = responsesRequestToChat(req, FULL);
    const { events } = stream(
      [
        chunk({ tool_calls: [{ index: 0, id: 'call_m', type: 'function', function: { name: 'mcp__facts__lookup_fact', arguments: '{"key":"k"}' } }] }),
        chunk({}, 'tool_calls'),
      ],
      ctx({ namespacedTools: r.namespacedTools, toolSearchName: r.toolSearchName }),
    );
    expect(events.find((e) => e.type === 'response.output_item.done')!.item).toMatchObject({
      type: 'function_call',
      namespace: 'mcp__facts',
      name: 'lookup_fact',
      arguments: '{"key":"k"}',
    });
  });
});

describe('reasoning', () => {
  const details = [{ type: 'reasoning.text', text: 'Think.', signature: 'sig-1', format: 'anthropic-claude-v1', index: 0 }];

  it('non-stream: reasoning + reasoning_details become one reasoning item (summary, content, encrypted_content)', () => {
    const answer: ChatCompletion = {
      id: 'c',
      choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'Hi', reasoning: 'Think.', reasoning_details: details } }],
    };
    const out = chatCompletionToResponse(answer, ctx());
    expect(out.output[0]).toEqual({
      type: 'reasoning',
      id: 'rs_f_0',
      summary: [{ type: 'summary_text', text: 'Think.' }],
      content: [{ type: 'reasoning_text', text: 'Think.' }],
      encrypted_content: encodeReasoningDetails(details),
    });
    expect(out.output[1]).toMatchObject({ type: 'message', content: [{ type: 'output_text', text: 'Hi' }] });
  });

  it('stream (OpenRouter): summary events Codex shows; details merged per block into encrypted_content', () => {
    const { events, s } = stream(
      [
        chunk({ reasoning: 'Th', reasoning_details: [{ type: 'reasoning.text', text: 'Th', index: 0, format: 'anthropic-claude-v1' }] }),
        chunk({ reasoning: 'ink.', reasoning_details: [{ type: 'reasoning.text', text: 'ink.', index: 0, signature: 'sig-1' }] }),
        chunk({ content: 'Hi' }),
        chunk({}, 'stop'),
      ],
      ctx(),
    );
    expect(events.map((e) => e.type).slice(2, 9)).toEqual([
      'response.output_item.added',
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
      'response.output_item.done',
    ]);
    expect(events.filter((e) => e.type === 'response.reasoning_summary_text.delta').map((e) => [e.delta, e.summary_index])).toEqual([
      ['Th', 0],
      ['ink.', 0],
    ]);
    const item = s.output[0] as { encrypted_content: string; summary: unknown };
    expect(item.summary).toEqual([{ type: 'summary_text', text: 'Think.' }]);
    expect(decodeReasoningDetails(item.encrypted_content)).toEqual([
      { type: 'reasoning.text', text: 'Think.', index: 0, format: 'anthropic-claude-v1', signature: 'sig-1' },
    ]);
  });

  it('stream (Ollama): `reasoning` deltas alone make a summary-only item (no encrypted_content)', () => {
    const { s } = stream([chunk({ reasoning: 'hmm' }), chunk({ content: 'ok' }), chunk({}, 'stop')], ctx());
    expect(s.output[0]).toEqual({
      type: 'reasoning',
      id: 'rs_f_0',
      summary: [{ type: 'summary_text', text: 'hmm' }],
      content: [{ type: 'reasoning_text', text: 'hmm' }],
    });
  });

  it('request: the reasoning item goes back on the next assistant message, with its details verbatim', () => {
    const item = {
      type: 'reasoning',
      id: 'rs_1',
      summary: [{ type: 'summary_text', text: 'Think.' }],
      content: [{ type: 'reasoning_text', text: 'Think.' }],
      encrypted_content: encodeReasoningDetails(details),
    };
    const req = {
      model: 'm',
      reasoning: { effort: 'xhigh', summary: 'auto' },
      input: [
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'q' }] },
        item,
        { type: 'function_call', call_id: 'c1', name: 'exec_command', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c1', output: 'done' },
      ],
    } as unknown as ResponsesRequest;
    const { chat } = responsesRequestToChat(req, FULL);
    const asst = chat.messages.find((m) => m.role === 'assistant')!;
    expect(asst.reasoning).toBe('Think.');
    expect(asst.reasoning_details).toEqual(details);

    const openrouter = fitChatRequest('openrouter', chat).body;
    expect(openrouter.reasoning).toEqual({ effort: 'xhigh' });
    expect(openrouter).not.toHaveProperty('reasoning_effort');
    expect((openrouter.messages[1] as ChatAssistantMessage).reasoning_details).toEqual(details);

    const ollama = fitChatRequest('ollama', chat).body;
    expect(ollama.reasoning_effort).toBe('high'); // Ollama takes high/medium/low/none only
    expect((ollama.messages[1] as ChatAssistantMessage).reasoning).toBe('Think.');
    expect(ollama.messages[1]).not.toHaveProperty('reasoning_details');
    expect(chat.messages[1]).toHaveProperty('reasoning_details'); // the shared translation is not modified
  });

  it('encrypted_content from OpenAI is not mistaken for the gateway’s', () => {
    expect(isGatewayReasoning('gAAAAAB...')).toBe(false);
    expect(decodeReasoningDetails('gAAAAAB...')).toBeUndefined();
    expect(decodeReasoningDetails('gw.rd1.%%%')).toBeUndefined();
  });

  it("a native provider is never sent reasoning the gateway made (OpenAI's own is kept)", () => {
    const ours = { type: 'reasoning', summary: [], encrypted_content: encodeReasoningDetails([{ type: 'reasoning.text', text: 't' }]) };
    const theirs = { type: 'reasoning', summary: [], encrypted_content: 'gAAAAAB...' };
    const msg = { type: 'message', role: 'user', content: 'q' };
    expect(withoutGatewayReasoning([msg, ours, theirs])).toEqual([msg, theirs]);
    expect(withoutGatewayReasoning([msg, theirs])).toBeUndefined(); // nothing to remove: nothing allocated
    expect(withoutGatewayReasoning('just text')).toBeUndefined();
  });

  it('merges streamed blocks by index and type; a block without an index stands alone', () => {
    const into: Record<string, unknown>[] = [];
    mergeReasoningDetails(into, [{ type: 'reasoning.encrypted', data: 'AA', index: 1 }]);
    mergeReasoningDetails(into, [
      { type: 'reasoning.encrypted', data: 'BB', index: 1 },
      { type: 'reasoning.summary', summary: 's' },
    ]);
    expect(into).toEqual([
      { type: 'reasoning.encrypted', data: 'AABB', index: 1 },
      { type: 'reasoning.summary', summary: 's' },
    ]);
  });
});

describe('mapped fields, per provider', () => {
  const req = {
    model: 'm',
    input: [
      { role: 'user', content: [{ type: 'input_image', image_url: 'data:image/png;base64,AA', detail: 'original' }] },
      { type: 'item_reference', id: 'x' },
    ],
    prompt_cache_key: 'sess-1',
    text: { verbosity: 'low' },
    service_tier: 'priority',
    store: true,
    tools: [{ type: 'web_search' }, { type: 'some_future_tool' }],
  } as unknown as ResponsesRequest;

  it('carries prompt_cache_key, verbosity and service_tier; reports what no chat body holds', () => {
    const r = responsesRequestToChat(req, FULL);
    expect(r.chat).toMatchObject({ prompt_cache_key: 'sess-1', verbosity: 'low', service_tier: 'priority' });
    expect(r.dropped).toEqual(['input:item_reference', 'store', 'tools:web_search', 'tools:other']);
    expect((r.chat.messages[0].content as any)[0].image_url.detail).toBe('high'); // `original` is Responses-only
  });

  it('without carryExtras the fields are reported instead', () => {
    expect(responsesRequestToChat(req).dropped).toEqual(
      ['input:item_reference', 'reasoning.effort', 'prompt_cache_key', 'text.verbosity', 'service_tier', 'store', 'tools:web_search', 'tools:other'].filter(
        (l) => l !== 'reasoning.effort',
      ),
    );
  });

  it('OpenRouter keeps prompt_cache_key and verbosity, drops service_tier; Ollama drops all three; OpenAI-compatible keeps them', () => {
    const { chat } = responsesRequestToChat(req, FULL);
    const or = fitChatRequest('openrouter', chat);
    expect(or.body).toMatchObject({ prompt_cache_key: 'sess-1', verbosity: 'low' });
    expect(or.body).not.toHaveProperty('service_tier');
    expect(or.dropped).toEqual(['service_tier']);
    const ol = fitChatRequest('ollama', chat);
    for (const k of ['prompt_cache_key', 'verbosity', 'service_tier']) expect(ol.body).not.toHaveProperty(k);
    expect(ol.dropped).toEqual(['prompt_cache_key', 'text.verbosity', 'service_tier']);
    expect(fitChatRequest('openai', chat).dropped).toEqual([]);
  });
});
