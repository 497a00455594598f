import type { ChangeFeed, RouteEntity } from '@gw/db';
import type { ProviderCache, ResolvedProvider } from '@gw/providers';
import type { RouteRepository } from './route.repository';
import { RouteTable } from './route.table';

const provider = (id: string, kind: ResolvedProvider['kind']): ResolvedProvider =>
  ({ id, name: id, kind, baseUrl: `http://${id}.invalid/v1`, credential: null, settings: {}, enabled: true, responsesNative: kind === 'openai' }) as ResolvedProvider;

const PROVIDERS = new Map([
  ['ollama', provider('ollama', 'ollama')],
  ['ollama-2', provider('ollama-2', 'ollama')],
  ['openai', provider('openai', 'openai')],
]);

function route(modelPattern: string, ...targets: Array<{ providerId: string; model?: string; priority?: number }>): RouteEntity {
  return {
    id: `r-${modelPattern}`,
    tenantId: null,
    modelPattern,
    targets: targets.map((t) => ({ model: null, weight: 1, priority: 0, ...t })),
    settings: {},
    enabled: true,
  } as RouteEntity;
}

/** A table over in-memory rows (what RouteRepository.listAll returns) and providers (what ProviderCache holds). */
async function table(rows: RouteEntity[]): Promise<RouteTable> {
  const repo = { listAll: async () => rows } as unknown as RouteRepository;
  const providers = { get: (id: string) => PROVIDERS.get(id), all: () => [...PROVIDERS.values()] } as unknown as ProviderCache;
  const t = new RouteTable(repo, providers, {} as ChangeFeed);
  await t.reload();
  return t;
}

const upstream = (t: RouteTable, model: string) => {
  const r = t.resolve('tenant', model);
  return r && { pattern: r.pattern, targets: r.groups.flat().map((x) => `${x.provider.id}:${x.model ?? '(as asked)'}`) };
};

describe('RouteTable: Ollama names with and without :latest', () => {
  it('routes `name` to the Ollama route listed as `name:latest`, before a catch-all, sending the listed name', async () => {
    const t = await table([route('qwen2.5-coder:latest', { providerId: 'ollama' }), route('*', { providerId: 'openai' })]);
    expect(upstream(t, 'qwen2.5-coder')).toEqual({ pattern: 'qwen2.5-coder:latest', targets: ['ollama:qwen2.5-coder:latest'] });
    // The listed name itself is unchanged: sent as asked.
    expect(upstream(t, 'qwen2.5-coder:latest')).toEqual({ pattern: 'qwen2.5-coder:latest', targets: ['ollama:(as asked)'] });
    // Another tag is another model: the catch-all gets it.
    expect(upstream(t, 'qwen2.5-coder:7b')).toEqual({ pattern: '*', targets: ['openai:(as asked)'] });
  });

  it('routes `name:latest` to the Ollama route listed as `name`', async () => {
    const t = await table([route('llama3.2', { providerId: 'ollama' }), route('*', { providerId: 'openai' })]);
    expect(upstream(t, 'llama3.2:latest')).toEqual({ pattern: 'llama3.2', targets: ['ollama:llama3.2'] });
  });

  it('keeps a target model the route names, and every Ollama fallback', async () => {
    const t = await table([route('coder:latest', { providerId: 'ollama', model: 'qwen2.5-coder:14b' }, { providerId: 'ollama-2', priority: 1 })]);
    expect(upstream(t, 'coder')).toEqual({ pattern: 'coder:latest', targets: ['ollama:qwen2.5-coder:14b', 'ollama-2:coder:latest'] });
  });

  it('does not apply to a route with a non-Ollama target, nor let the alias beat an exact route', async () => {
    const t = await table([
      route('gpt-x:latest', { providerId: 'openai' }),
      route('mixed:latest', { providerId: 'ollama' }, { providerId: 'openai', priority: 1 }),
      route('both:latest', { providerId: 'ollama' }),
      route('both', { providerId: 'ollama-2' }),
    ]);
    expect(upstream(t, 'gpt-x')).toBeUndefined();
    expect(upstream(t, 'mixed')).toBeUndefined();
    expect(upstream(t, 'both')).toEqual({ pattern: 'both', targets: ['ollama-2:(as asked)'] });
    expect(upstream(t, 'both:latest')).toEqual({ pattern: 'both:latest', targets: ['ollama:(as asked)'] });
  });

  it('memoises the alias (the same object for the same name)', async () => {
    const t = await table([route('m:latest', { providerId: 'ollama' })]);
    expect(t.resolve('tenant', 'm')).toBe(t.resolve('tenant', 'm'));
  });
});
