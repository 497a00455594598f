import { Injectable } from '@nestjs/common';
import { Errors } from '@gw/common';
import { ChangeFeed, RouteEntity, RouteSettings, RouteTarget } from '@gw/db';
import { ProviderRepository } from '@gw/providers';
import { RouteRepository } from './route.repository';

export interface RouteInput {
  modelPattern: string;
  targets: (Partial<RouteTarget> & { providerId: string })[];
  settings?: RouteSettings;
  enabled?: boolean;
}

@Injectable()
export class RouteService {
  constructor(
    private readonly routes: RouteRepository,
    private readonly providers: ProviderRepository,
    private readonly changes: ChangeFeed,
  ) {}

  list(tenantId: string | null): Promise<RouteEntity[]> {
    return this.routes.list(tenantId);
  }

  listAll(): Promise<RouteEntity[]> {
    return this.routes.listAll();
  }

  async get(tenantId: string | null, id: string): Promise<RouteEntity> {
    const r = await this.routes.get(tenantId, id);
    if (!r) throw routeNotFound(id);
    return r;
  }

  /** A route by id whatever its scope (global or any tenant's): for root callers only. */
  async getAnyScope(id: string): Promise<RouteEntity> {
    const r = await this.routes.getAnyScope(id);
    if (!r) throw routeNotFound(id);
    return r;
  }

  async create(tenantId: string | null, input: RouteInput): Promise<RouteEntity> {
    if (await this.routes.findByPattern(tenantId, input.modelPattern)) {
      throw Errors.conflict(`A route for "${input.modelPattern}" already exists in this scope.`, 'modelPattern');
    }
    const r = await this.routes.save(tenantId, {
      modelPattern: input.modelPattern,
      targets: await this.normaliseTargets(input.targets),
      settings: input.settings ?? {},
      enabled: input.enabled ?? true,
    });
    await this.changes.bump();
    return r;
  }

  async update(tenantId: string | null, id: string, patch: Partial<RouteInput>): Promise<RouteEntity> {
    const current = await this.get(tenantId, id);
    const next: Partial<RouteEntity> = {};
    if (patch.modelPattern !== undefined && patch.modelPattern !== current.modelPattern) {
      if (await this.routes.findByPattern(tenantId, patch.modelPattern)) {
        throw Errors.conflict(`A route for "${patch.modelPattern}" already exists in this scope.`, 'modelPattern');
      }
      next.modelPattern = patch.modelPattern;
    }
    if (patch.targets !== undefined) next.targets = await this.normaliseTargets(patch.targets);
    if (patch.settings !== undefined) next.settings = { ...current.settings, ...patch.settings };
    if (patch.enabled !== undefined) next.enabled = patch.enabled;
    const r = (await this.routes.update(tenantId, id, next))!;
    await this.changes.bump();
    return r;
  }

  async upsert(tenantId: string | null, input: RouteInput): Promise<RouteEntity> {
    const existing = await this.routes.findByPattern(tenantId, input.modelPattern);
    return existing ? this.update(tenantId, existing.id, input) : this.create(tenantId, input);
  }

  async delete(tenantId: string | null, id: string): Promise<void> {
    if (!(await this.routes.delete(tenantId, id))) throw routeNotFound(id);
    await this.changes.bump();
  }

  private async normaliseTargets(targets: RouteInput['targets']): Promise<RouteTarget[]> {
    if (!targets.length) throw Errors.badRequest('targets: a route needs at least one target.', 'targets');
    const out: RouteTarget[] = [];
    for (const [i, t] of targets.entries()) {
      if (!(await this.providers.get(t.providerId))) {
        throw Errors.badRequest(`targets[${i}].providerId: no provider with id ${t.providerId}.`, `targets[${i}].providerId`);
      }
      out.push({ providerId: t.providerId, model: t.model ?? null, weight: t.weight ?? 1, priority: t.priority ?? i });
    }
    return out;
  }
}

function routeNotFound(id: string) {
  return Errors.notFound(`No route with id ${id}.`, 'route_not_found');
}
