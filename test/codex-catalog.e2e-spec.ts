/**
 * Codex's own model catalog: `GET /v1/models?client_version=…` answers `{"models":[ModelInfo…]}` with the models
 * the key may call; without `client_version` the OpenAI list is unchanged. The real Codex CLI configured with
 * `model_catalog_url` decodes it (no "failed to decode models response" with RUST_LOG=debug) and keeps the
 * freeform apply_patch tool, through a pass-through and a translated provider. The committed codex-models.json
 * matches what the pinned binary bundles.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeProvider, Stack, runCodexExec, seedTenant, startStack } from '@gw/testing';

jest.setTimeout(120_000);

const ROOT = join(__dirname, '..');
const CODEX_MODELS = join(ROOT, 'apps/gateway/src/models/codex-models.json');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const codexModels = require(CODEX_MODELS) as { codexVersion: string; fallbackBaseInstructions: string; models: Array<Record<string, any>> };
const bundled = (slug: string) => codexModels.models.find((m) => m.slug === slug)!;

async function get(stack: Stack, path: string, key: string): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${stack.baseURL}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

describe('codex-models.json', () => {
  it('is what the pinned Codex binary bundles (node scripts/codex-models.mjs --check)', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/codex-models.mjs'), '--check'], { cwd: ROOT, encoding: 'utf8', timeout: 90_000 });
    if (r.status !== 0) console.error(r.stdout, r.stderr);
    expect(r.status).toBe(0);
    expect(codexModels.codexVersion).toBe('0.169.0');
    expect(codexModels.fallbackBaseInstructions).toMatch(/^You are a coding agent running in the Codex CLI/);
  });
});

describe('GET /v1/models: Codex catalog and OpenAI list', () => {
  let stack: Stack;
  let openai: FakeProvider;
  let ollama: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;

  beforeAll(async () => {
    openai = await FakeProvider.start({ flavor: 'openai', models: ['gpt-5.5', 'gpt-4o-mini', 'secret-model'] });
    ollama = await FakeProvider.start({ flavor: 'ollama', models: ['qwen2.5-coder:7b'] });
    stack = await startStack();
    tenant = await seedTenant(stack, {
      provider: { kind: 'openai', name: 'cat-openai', baseUrl: openai.baseUrl, credential: 'sk-up' },
      patterns: ['gpt-5.5', 'gpt-4o-mini', 'secret-model'],
      key: { allowedModels: ['gpt-5.5', 'gpt-4o-mini', 'team-codex', 'qwen2.5-coder:7b'] },
    });
    const ol = await seedTenant(stack, { provider: { kind: 'ollama', name: 'cat-ollama', baseUrl: ollama.baseUrl }, patterns: ['qwen2.5-coder:7b'] });
    // An alias whose upstream model is a slug Codex knows.
    const alias = await stack.api('POST', '/admin/routes', { modelPattern: 'team-codex', targets: [{ providerId: tenant.providerId, model: 'gpt-5.5' }] });
    expect(alias.status).toBe(201);
    expect(ol.providerId).toBeTruthy();
  });
  afterAll(async () => {
    await stack?.close();
    await openai?.close();
    await ollama?.close();
  });

  it('answers in Codex shape with only the models the key may use', async () => {
    const r = await get(stack, '/models?client_version=0.169.0', tenant.secret);
    expect(r.status).toBe(200);
    expect(r.body.object).toBeUndefined();
    expect(r.body.data).toBeUndefined();
    expect(r.headers.get('etag')).toMatch(/^"[\w-]{22}"$/);
    const bySlug = new Map<string, any>(r.body.models.map((m: any) => [m.slug, m]));
    expect([...bySlug.keys()].sort()).toEqual(['gpt-4o-mini', 'gpt-5.5', 'qwen2.5-coder:7b', 'team-codex']);
    expect(bySlug.has('secret-model')).toBe(false); // routed, but not on the key's allow-list

    // A slug Codex bundles: Codex's own metadata, minus an upgrade towards a model the key cannot call.
    const known = bySlug.get('gpt-5.5');
    expect({ ...known, upgrade: bundled('gpt-5.5').upgrade }).toEqual(bundled('gpt-5.5'));
    expect(bundled('gpt-5.5').upgrade?.model).toBe('gpt-6-sol');
    expect(known.upgrade).toBeNull();
    expect(known.apply_patch_tool_type).toBe('freeform');

    // An alias of a known slug: the upstream model's metadata under the listed name.
    const alias = bySlug.get('team-codex');
    expect(alias.display_name).toBe('team-codex');
    expect(alias.context_window).toBe(bundled('gpt-5.5').context_window);
    expect(alias.supported_reasoning_levels).toEqual(bundled('gpt-5.5').supported_reasoning_levels);
    expect(alias.base_instructions).toBe(bundled('gpt-5.5').base_instructions);

    // Generic: Codex's fallback prompt and limits; apply_patch as a function for an older pass-through model…
    const mini = bySlug.get('gpt-4o-mini');
    expect(mini).toMatchObject({ shell_type: 'unified_exec', apply_patch_tool_type: 'function', context_window: 272_000, supports_search_tool: false });
    expect(mini.base_instructions).toBe(codexModels.fallbackBaseInstructions);
    // …and freeform behind a translated provider (the gateway turns the custom tool into a function).
    expect(bySlug.get('qwen2.5-coder:7b')).toMatchObject({ apply_patch_tool_type: 'freeform', supports_search_tool: false });
  });

  it('keeps the plain OpenAI list without client_version', async () => {
    const r = await get(stack, '/models', tenant.secret);
    expect(r.status).toBe(200);
    expect(r.body.object).toBe('list');
    expect(r.body.models).toBeUndefined();
    expect(r.body.data.map((m: any) => m.id).sort()).toEqual(['gpt-4o-mini', 'gpt-5.5', 'qwen2.5-coder:7b', 'team-codex']);
    expect(r.body.data.find((m: any) => m.id === 'gpt-5.5')).toEqual({ id: 'gpt-5.5', object: 'model', created: 0, owned_by: 'cat-openai' });
    expect(r.headers.get('etag')).toBeNull();
  });

  it('refuses a caller without a key', async () => {
    const res = await fetch(`${stack.baseURL}/models?client_version=0.169.0`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error.type).toBeDefined();
  });
});

describe.each([
  ['pass-through (openai), a slug Codex bundles', 'openai' as const, 'gpt-5.5', '/responses'],
  ['translated (ollama), a model Codex does not know', 'ollama' as const, 'gpt-oss:20b', '/chat/completions'],
])('Codex CLI with model_catalog_url, %s', (_label, flavor, model, upstreamPath) => {
  let stack: Stack;
  let fake: FakeProvider;
  let tenant: Awaited<ReturnType<typeof seedTenant>>;

  beforeAll(async () => {
    fake = await FakeProvider.start({ flavor, models: [model] });
    stack = await startStack();
    tenant = await seedTenant(stack, { provider: { kind: flavor, baseUrl: fake.baseUrl, credential: 'sk-upstream' }, patterns: [model] });
  });
  afterAll(async () => {
    await stack?.close();
    await fake?.close();
  });

  it('decodes the catalog and keeps the freeform apply_patch tool', async () => {
    fake.script({ text: 'catalog ok' });
    const r = await runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: tenant.secret,
      model,
      prompt: 'Say ok.',
      timeoutMs: 90_000,
      env: { RUST_LOG: 'debug' },
      args: ['-c', `model_providers.team.model_catalog_url=${JSON.stringify(`${stack.baseURL}/models`)}`],
    });
    if (r.code !== 0) console.error(r.stderr.slice(-4000));
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('catalog ok');
    // Codex fetched the catalog from the gateway and used it.
    expect(r.stderr).toMatch(/http\.response\.status_code=200 success=true[^\n]*endpoint="\/models"/);
    expect(r.stderr).not.toContain('failed to decode models response');
    expect(r.stderr).not.toContain('failed to refresh available models');
    expect(r.stderr).not.toContain('Defaulting to fallback metadata');

    const calls = fake.requestsTo(upstreamPath);
    expect(calls).toHaveLength(1);
    const tools: any[] = calls[0].body.tools;
    if (upstreamPath === '/responses') {
      // Pass-through: Codex's freeform tool reaches the provider as it sent it.
      const patch = tools.find((t) => t.name === 'apply_patch');
      expect(patch.type).toBe('custom');
      expect(patch.format?.type).toBe('grammar');
    } else {
      // Translated: the freeform tool becomes a one-string function (Codex offered `custom`; without the
      // catalog it offers no apply_patch at all for an unknown model).
      const patch = tools.find((t) => t.function?.name === 'apply_patch');
      expect(patch.type).toBe('function');
      expect(Object.keys(patch.function.parameters.properties)).toEqual(['input']);
    }
  });
  it('applies a patch the model sends through the freeform tool', async () => {
    const patch = ['*** Begin Patch', '*** Add File: hello.txt', '+hello from the catalog', '*** End Patch', ''].join('\n');
    const cwd = mkdtempSync(join(tmpdir(), 'codex-patch-'));
    fake.reset();
    // Pass-through: the provider's custom_tool_call reaches Codex as sent. Translated: the model calls the
    // one-string function and the gateway turns it back into a custom_tool_call.
    const call = upstreamPath === '/responses' ? { custom: true, arguments: patch } : { arguments: JSON.stringify({ input: patch }) };
    fake.script({ toolCalls: [{ id: 'call_patch_1', name: 'apply_patch', ...call }] }, { text: 'patched' });
    const r = await runCodexExec({
      baseUrl: stack.baseURL,
      apiKey: tenant.secret,
      model,
      prompt: 'Create hello.txt.',
      cwd,
      timeoutMs: 90_000,
      args: ['-c', `model_providers.team.model_catalog_url=${JSON.stringify(`${stack.baseURL}/models`)}`],
    });
    if (r.code !== 0) console.error(r.stderr.slice(-4000));
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('patched');
    expect(readFileSync(join(cwd, 'hello.txt'), 'utf8')).toBe('hello from the catalog\n');
    const calls = fake.requestsTo(upstreamPath);
    expect(calls).toHaveLength(2);
    if (upstreamPath === '/responses') {
      const output = calls[1].body.input.find((i: any) => i.type === 'custom_tool_call_output' && i.call_id === 'call_patch_1');
      expect(JSON.stringify(output.output)).toContain('hello.txt');
    } else {
      const result = calls[1].body.messages.find((m: any) => m.role === 'tool' && m.tool_call_id === 'call_patch_1');
      expect(result.content).toContain('hello.txt');
    }
  });
});
