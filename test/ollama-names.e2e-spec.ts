/**
 * Ollama names as Ollama resolves them: with OLLAMA_BASE_URL the gateway routes every model Ollama lists
 * (/api/tags) to it. A model listed as `qwen2.5-coder:latest` is also routed when asked for as `qwen2.5-coder`,
 * and one listed as `llama3.2` when asked for as `llama3.2:latest`; the upstream gets the listed name. The
 * catch-all `*` (OPENAI_API_KEY) no longer takes those names, but still takes other tags.
 */
import { FakeProvider, Stack, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(60_000);

describe('Ollama names with and without :latest (providers from the environment)', () => {
  let stack: Stack;
  let ollama: FakeProvider;
  let openai: FakeProvider;
  let key: string;

  beforeAll(async () => {
    ollama = await FakeProvider.start({ flavor: 'ollama', models: ['qwen2.5-coder:latest', 'llama3.2'] });
    openai = await FakeProvider.start({ flavor: 'openai' });
    stack = await startStack({ ollamaBaseUrl: ollama.origin, openaiApiKey: 'sk-openai', openaiBaseUrl: openai.baseUrl });
    key = (await seedTenant(stack, { provider: { kind: 'ollama', name: 'ollama', baseUrl: ollama.baseUrl } })).secret;
  });
  afterAll(async () => {
    await stack?.close();
    await Promise.all([ollama?.close(), openai?.close()]);
  });
  beforeEach(() => {
    ollama.reset();
    openai.reset();
  });

  const post = async (path: string, body: object) => {
    const res = await fetch(`${stack.baseURL}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  it.each([
    ['qwen2.5-coder', 'qwen2.5-coder:latest'],
    ['qwen2.5-coder:latest', 'qwen2.5-coder:latest'],
    ['llama3.2:latest', 'llama3.2'],
    ['llama3.2', 'llama3.2'],
  ])('chat for %s reaches Ollama as %s', async (asked, listed) => {
    const r = await post('/chat/completions', { model: asked, messages: [{ role: 'user', content: 'hi' }] });
    expect(r.status).toBe(200);
    expect(r.body.model).toBe(listed); // the model that served, as for any alias
    expect(r.body.choices[0].message.content).toContain('fake-ollama');
    const sent = ollama.requestsTo('/chat/completions');
    expect(sent.map((c) => c.body.model)).toEqual([listed]);
    expect(openai.requestsTo('')).toHaveLength(0);
  });

  it('a Responses call (what Codex sends) for the untagged name is translated to Ollama under the listed name', async () => {
    const r = await post('/responses', { model: 'qwen2.5-coder', input: 'hi' });
    expect(r.status).toBe(200);
    expect(r.body.output.some((o: any) => o.type === 'message')).toBe(true);
    expect(ollama.requestsTo('/chat/completions').map((c) => c.body.model)).toEqual(['qwen2.5-coder:latest']);
  });

  it('another tag is another model: the catch-all route still takes it', async () => {
    const r = await post('/chat/completions', { model: 'qwen2.5-coder:7b', messages: [{ role: 'user', content: 'hi' }] });
    expect(r.status).toBe(404); // the fake OpenAI does not serve it, and says so
    expect(openai.requestsTo('/chat/completions').map((c) => c.body.model)).toEqual(['qwen2.5-coder:7b']);
    expect(ollama.requestsTo('')).toHaveLength(0);
  });

  it('/v1/models lists the names Ollama listed', async () => {
    const res = await fetch(`${stack.baseURL}/models`, { headers: { authorization: `Bearer ${key}` } });
    const ids = ((await res.json()) as any).data.map((m: any) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['qwen2.5-coder:latest', 'llama3.2']));
    expect(ids).not.toContain('qwen2.5-coder');
  });
});
