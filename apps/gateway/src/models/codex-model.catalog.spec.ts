import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CatalogModel, FALLBACK_CONTEXT_WINDOW, buildCodexCatalog } from './codex-model.catalog';

const file = JSON.parse(readFileSync(join(__dirname, 'codex-models.json'), 'utf8')) as { fallbackBaseInstructions: string; models: Array<Record<string, any>> };
const bundled = (slug: string) => file.models.find((m) => m.slug === slug)!;
const model = (id: string, over: Partial<CatalogModel> = {}): CatalogModel => ({ id, upstreamModel: null, provider: 'p', passThrough: true, ...over });
const one = (m: CatalogModel, ...others: CatalogModel[]) => buildCodexCatalog([m, ...others]).models[0];

describe('buildCodexCatalog', () => {
  it('gives a bundled slug Codex’s own ModelInfo, dropping an upgrade to a model not listed', () => {
    const info = one(model('gpt-5.5'));
    expect({ ...info, upgrade: bundled('gpt-5.5').upgrade }).toEqual(bundled('gpt-5.5'));
    expect(info.upgrade).toBeNull();
    // Listed too: the upgrade stays.
    expect(one(model('gpt-5.5'), model('gpt-6-sol')).upgrade).toEqual(bundled('gpt-5.5').upgrade);
  });

  it('matches an alias by its upstream model, also as OpenRouter’s openai/<slug>, under the listed name', () => {
    for (const m of [model('team', { upstreamModel: 'gpt-5.5' }), model('team', { upstreamModel: 'openai/gpt-5.5' }), model('openai/gpt-5.5')]) {
      const info = one(m);
      expect(info.slug).toBe(m.id);
      expect(info.context_window).toBe(bundled('gpt-5.5').context_window);
      expect(info.base_instructions).toBe(bundled('gpt-5.5').base_instructions);
    }
    expect(one(model('gpt-5.5')).display_name).toBe(bundled('gpt-5.5').display_name);
    expect(one(model('team', { upstreamModel: 'gpt-5.5' })).display_name).toBe('team');
  });

  it('turns tool_search off for a bundled model behind a translated provider', () => {
    expect(bundled('gpt-5.5').supports_search_tool).toBe(true);
    expect(one(model('openai/gpt-5.5', { passThrough: false })).supports_search_tool).toBe(false);
    expect(one(model('gpt-5.5')).supports_search_tool).toBe(true);
  });

  it('gives other models Codex’s fallback prompt and window, with apply_patch freeform where custom tools work', () => {
    const generic = one(model('llama3.2', { passThrough: false }));
    expect(generic).toMatchObject({
      slug: 'llama3.2',
      shell_type: 'unified_exec',
      apply_patch_tool_type: 'freeform',
      context_window: FALLBACK_CONTEXT_WINDOW,
      supported_reasoning_levels: [],
      supports_search_tool: false,
      base_instructions: file.fallbackBaseInstructions,
    });
    expect(one(model('gpt-4o-mini')).apply_patch_tool_type).toBe('function');
    expect(one(model('team-5', { upstreamModel: 'gpt-5-mini' })).apply_patch_tool_type).toBe('freeform');
    expect(one(model('o3')).apply_patch_tool_type).toBe('function');
  });

  it('keeps the order and gives generic models distinct priorities after Codex’s own', () => {
    const out = buildCodexCatalog([model('a'), model('gpt-5.5'), model('b')]).models;
    expect(out.map((m) => m.slug)).toEqual(['a', 'gpt-5.5', 'b']);
    expect(new Set(out.map((m) => m.priority)).size).toBe(3);
    expect(Math.min(out[0].priority as number, out[2].priority as number)).toBeGreaterThan(Math.max(...file.models.map((m) => m.priority)));
  });
});
