import codexRequest from './__fixtures__/codex-request.json';
import expectedChat from './__fixtures__/codex-request.chat.json';
import capturedTurn2 from './__fixtures__/codex-0.169-turn2.request.json';
import { responsesRequestToChat } from './responses-to-chat.mapper';
import type { ChatAssistantMessage, ChatToolMessage, ResponsesRequest } from './translate.types';

const req = codexRequest as unknown as ResponsesRequest;

describe('responsesRequestToChat', () => {
  describe('golden: realistic Codex body', () => {
    const result = responsesRequestToChat(req);

    it('maps the whole body to the expected chat request', () => {
      expect(result.chat).toEqual(expectedChat);
    });

    it('reports wrapped custom tools, dropped hosted tools and namespace members', () => {
      expect([...result.customTools]).toEqual(['apply_patch']);
      expect(result.droppedTools).toEqual(['web_search', 'local_shell', 'image_generation']);
      expect(result.namespacedTools.get('multi_agent_v1__spawn_agent')).toEqual({
        namespace: 'multi_agent_v1',
        name: 'spawn_agent',
      });
    });

    it('drops Responses-only fields rather than forwarding them', () => {
      for (const k of ['store', 'include', 'prompt_cache_key', 'client_metadata', 'reasoning', 'reasoning_effort', 'text', 'instructions', 'input']) {
        expect(result.chat).not.toHaveProperty(k);
      }
    });

    it('keeps every tool_call paired with a tool message right after its assistant message', () => {
      const msgs = result.chat.messages;
      msgs.forEach((m, i) => {
        if (m.role !== 'assistant' || !m.tool_calls) return;
        const ids = m.tool_calls.map((t) => t.id);
        const following = msgs.slice(i + 1, i + 1 + ids.length) as ChatToolMessage[];
        expect(following.map((t) => [t.role, t.tool_call_id])).toEqual(ids.map((id) => ['tool', id]));
      });
    });

    it('does not mutate the input request', () => {
      const copy = JSON.parse(JSON.stringify(codexRequest));
      responsesRequestToChat(req, { supportsReasoningContent: true, supportsReasoningEffort: true });
      expect(codexRequest).toEqual(copy);
    });
  });

  describe('reasoning', () => {
    const turn: ResponsesRequest = {
      model: 'gpt-oss:20b',
      input: [
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'old question' }] },
        { type: 'reasoning', id: 'rs_old', summary: [], content: [{ type: 'reasoning_text', text: 'OLD' }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'old answer' }] },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'list files' }] },
        { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'summary only' }] },
        { type: 'function_call', call_id: 'c1', name: 'exec_command', arguments: '{"cmd":"ls"}' },
        { type: 'function_call_output', call_id: 'c1', output: 'a.txt' },
        { type: 'reasoning', id: 'rs_2', summary: [{ type: 'summary_text', text: 'ignored' }], content: [{ type: 'reasoning_text', text: 'raw wins' }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'There is a.txt' }] },
      ],
      reasoning: { effort: 'high', summary: 'auto' },
    };

    it('drops reasoning items and effort by default', () => {
      const { chat } = responsesRequestToChat(turn);
      expect(chat).not.toHaveProperty('reasoning_effort');
      for (const m of chat.messages) {
        expect(m).not.toHaveProperty('reasoning');
        expect(m).not.toHaveProperty('reasoning_content');
      }
    });

    it('attaches reasoning after the last user message to the next assistant message when supported', () => {
      const { chat } = responsesRequestToChat(turn, { supportsReasoningContent: true, supportsReasoningEffort: true });
      const assistants = chat.messages.filter((m): m is ChatAssistantMessage => m.role === 'assistant');
      expect(assistants.map((a) => a.reasoning)).toEqual([undefined, 'summary only', 'raw wins']);
      expect(chat.reasoning_effort).toBe('high');
    });

    it('can use reasoning_content instead of reasoning', () => {
      const { chat } = responsesRequestToChat(turn, { supportsReasoningContent: true, reasoningField: 'reasoning_content' });
      const last = chat.messages[chat.messages.length - 1] as ChatAssistantMessage;
      expect(last.reasoning_content).toBe('raw wins');
      expect(last).not.toHaveProperty('reasoning');
    });

    it('ignores reasoning that precedes the last user message (golden fixture)', () => {
      const { chat } = responsesRequestToChat(req, { supportsReasoningContent: true });
      expect(chat.messages.some((m) => 'reasoning' in m)).toBe(false);
    });
  });

  describe('real Codex 0.169 capture (turn 2)', () => {
    const captured = capturedTurn2 as unknown as ResponsesRequest;
    const { chat, droppedTools, customTools, namespacedTools } = responsesRequestToChat(captured);

    it('maps developer/user/function_call/function_call_output in order', () => {
      expect(chat.messages.map((m) => m.role)).toEqual(['system', 'system', 'user', 'user', 'assistant', 'tool']);
      const first = (captured.input as { content: { text: string }[] }[])[0].content[0].text;
      expect(chat.messages[0].content).toBe(first);
      expect((chat.messages[4] as ChatAssistantMessage).tool_calls).toEqual([
        { id: 'call_1', type: 'function', function: { name: 'exec_command', arguments: '{"cmd":"echo hi-from-codex"}' } },
      ]);
      expect(chat.messages[5]).toEqual({
        role: 'tool',
        tool_call_id: 'call_1',
        content: 'Chunk ID: 360a71\nWall time: 0.0000 seconds\nProcess exited with code 0\nOriginal token count: 4\nOutput:\nhi-from-codex\n',
      });
    });

    it('flattens the multi_agent_v1 namespace and keeps every function tool', () => {
      expect(chat.tools?.map((t) => t.function.name)).toEqual([
        'exec_command',
        'write_stdin',
        'request_user_input',
        'view_image',
        'multi_agent_v1__close_agent',
        'multi_agent_v1__resume_agent',
        'multi_agent_v1__send_input',
        'multi_agent_v1__spawn_agent',
        'multi_agent_v1__wait_agent',
        'get_goal',
        'create_goal',
        'update_goal',
      ]);
      expect(namespacedTools.size).toBe(5);
      expect(droppedTools).toEqual([]);
      expect(customTools.size).toBe(0);
    });

    it('copies the Codex settings that have chat equivalents and forces usage in the stream', () => {
      expect(chat.model).toBe('team-model');
      expect(chat.tool_choice).toBe('auto');
      expect(chat.parallel_tool_calls).toBe(true);
      expect(chat.stream).toBe(true);
      expect(chat.stream_options).toEqual({ include_usage: true });
      expect(Object.keys(chat).sort()).toEqual(['messages', 'model', 'parallel_tool_calls', 'stream', 'stream_options', 'tool_choice', 'tools']);
    });
  });

  describe('edge cases', () => {
    const fnTool = { type: 'function', name: 'exec_command', parameters: { type: 'object', properties: {} } } as const;

    it('maps a plain string input and a non-streaming request', () => {
      const { chat } = responsesRequestToChat({ model: 'm', input: 'hello', stream: false });
      expect(chat).toEqual({ model: 'm', messages: [{ role: 'user', content: 'hello' }], stream: false });
    });

    it('maps a forced function tool_choice and degrades a forced dropped tool to auto', () => {
      const forced = responsesRequestToChat({
        model: 'm',
        input: [],
        tools: [fnTool, { type: 'web_search' }],
        tool_choice: { type: 'function', name: 'exec_command' },
      });
      expect(forced.chat.tool_choice).toEqual({ type: 'function', function: { name: 'exec_command' } });
      const hosted = responsesRequestToChat({
        model: 'm',
        input: [],
        tools: [fnTool, { type: 'web_search' }],
        tool_choice: { type: 'web_search_preview' },
      });
      expect(hosted.chat.tool_choice).toBe('auto');
    });

    it('omits tool_choice and parallel_tool_calls when no chat tool survives', () => {
      const { chat, droppedTools } = responsesRequestToChat({
        model: 'm',
        input: [],
        tools: [{ type: 'web_search' }, { type: 'file_search', vector_store_ids: [] }],
        tool_choice: 'required',
        parallel_tool_calls: true,
      });
      expect(chat).not.toHaveProperty('tools');
      expect(chat).not.toHaveProperty('tool_choice');
      expect(chat).not.toHaveProperty('parallel_tool_calls');
      expect(droppedTools).toEqual(['web_search', 'file_search']);
    });

    it('maps text.format json_schema to response_format', () => {
      const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };
      const { chat } = responsesRequestToChat({
        model: 'm',
        input: [],
        text: { verbosity: 'low', format: { type: 'json_schema', name: 'codex_output_schema', schema, strict: true } },
      });
      expect(chat.response_format).toEqual({ type: 'json_schema', json_schema: { name: 'codex_output_schema', schema, strict: true } });
    });

    it('splits non-parallel calls into separate assistant turns', () => {
      const { chat } = responsesRequestToChat({
        model: 'm',
        input: [
          { type: 'function_call', call_id: 'a', name: 'f', arguments: '{}' },
          { type: 'function_call_output', call_id: 'a', output: '1' },
          { type: 'function_call', call_id: 'b', name: 'f', arguments: '{}' },
          { type: 'function_call_output', call_id: 'b', output: '2' },
        ],
      });
      expect(chat.messages.map((m) => (m.role === 'assistant' ? `assistant:${m.tool_calls?.length}` : m.role))).toEqual([
        'assistant:1',
        'tool',
        'assistant:1',
        'tool',
      ]);
    });

    it('turns an output whose call was never announced into user context instead of an orphan tool message', () => {
      const { chat } = responsesRequestToChat({
        model: 'm',
        input: [{ type: 'function_call_output', call_id: 'ghost', output: 'late result' }],
      });
      expect(chat.messages).toEqual([{ role: 'user', content: 'Output of tool call ghost:\nlate result' }]);
    });

    it('maps EasyInputMessage (no type, string content) and images with detail', () => {
      const { chat } = responsesRequestToChat({
        model: 'm',
        input: [
          { role: 'developer', content: 'be brief' },
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'what is this?' },
              { type: 'input_image', image_url: 'https://x/y.png', detail: 'high' },
              { type: 'input_image', file_id: 'file-123' },
            ],
          },
        ],
      });
      expect(chat.messages).toEqual([
        { role: 'system', content: 'be brief' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image_url', image_url: { url: 'https://x/y.png', detail: 'high' } },
          ],
        },
      ]);
    });

    it('maps a local_shell_call from foreign history to a paired tool call', () => {
      const { chat } = responsesRequestToChat({
        model: 'm',
        input: [
          { type: 'local_shell_call', call_id: 'ls1', status: 'completed', action: { type: 'exec', command: ['ls'] } },
          { type: 'function_call_output', call_id: 'ls1', output: 'a.txt' },
        ],
      });
      expect(chat.messages).toEqual([
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'ls1', type: 'function', function: { name: 'local_shell', arguments: '{"type":"exec","command":["ls"]}' } }],
        },
        { role: 'tool', tool_call_id: 'ls1', content: 'a.txt' },
      ]);
    });
  });

  describe('odd request shapes never throw (skipped or coerced)', () => {
    const base = { model: 'm' } as ResponsesRequest;
    it.each([
      ['input:[null]', { input: [null] }],
      [
        'reasoning summary not an array',
        {
          input: [
            { type: 'reasoning', summary: 'x' },
            { role: 'user', content: 'hi' },
          ],
        },
      ],
      [
        'reasoning content/summary with nulls',
        {
          input: [
            { role: 'user', content: 'hi' },
            { type: 'reasoning', summary: [null, 1], content: [null] },
          ],
        },
      ],
      ['content a number', { input: [{ role: 'user', content: 123 }] }],
      ['content with a null part', { input: [{ role: 'user', content: [null, { type: 'input_image', image_url: 5 }] }] }],
      ['assistant content object', { input: [{ role: 'assistant', content: { a: 1 } }] }],
      [
        'tools:[null]',
        { input: 'hi', tools: [null, 3, 'x', { type: 7 }, { type: 'function' }, { type: 'namespace', name: 'ns', tools: [null, { type: 'function' }] }] },
      ],
      ['tools not an array', { input: 'hi', tools: 'x' }],
      [
        'function_call without call_id, odd arguments',
        {
          input: [
            { type: 'function_call', name: 5, arguments: { a: 1 } },
            { type: 'function_call', call_id: 'c1', name: 'f', arguments: { a: 1 } },
          ],
        },
      ],
      ['tool output with odd parts', { input: [{ type: 'function_call_output', call_id: 'c1', output: [null, { type: 'input_text', text: 5 }] }] }],
      ['input not string or array', { input: 42 }],
      ['odd text/reasoning/instructions', { input: 'hi', text: 'x', reasoning: 'high', instructions: { a: 1 }, tool_choice: 5 }],
      ['local_shell_call with odd fields', { input: [{ type: 'local_shell_call', call_id: 5, id: 7, action: 'ls' }] }],
    ])('%s', (_label, extra) => {
      const r = responsesRequestToChat({ ...base, ...(extra as object) }, { supportsReasoningContent: true, supportsReasoningEffort: true });
      expect(Array.isArray(r.chat.messages)).toBe(true);
      expect(() => JSON.stringify(r.chat)).not.toThrow();
    });

    it('coerces what it keeps: non-object arguments are serialised, parts of the wrong type are dropped', () => {
      const r = responsesRequestToChat({
        ...base,
        input: [
          { role: 'user', content: [null, { type: 'input_text', text: 'a' }, { type: 'input_text', text: 3 }] },
          { type: 'function_call', call_id: 'c1', name: 'f', arguments: { x: 1 } },
        ],
      } as unknown as ResponsesRequest);
      expect(r.chat.messages[0]).toEqual({ role: 'user', content: 'a' });
      expect((r.chat.messages[1] as ChatAssistantMessage).tool_calls?.[0].function.arguments).toBe('{"x":1}');
    });
  });
});
