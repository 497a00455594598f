import { createHash } from 'node:crypto';
import { Controller, Get, Param, Query, Req, Res } from '@nestjs/common';
import { Errors, matchesAny } from '@gw/common';
import { ListedModel, RouteTable } from '@gw/routing';
import { Principal } from '@gw/tenancy';
import type { Request, Response } from 'express';
import { AuthenticateStep } from '../pipeline/authenticate.step';
import { CodexModelInfo, buildCodexCatalog, codexCatalogVersion } from './codex-model.catalog';

interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/**
 * Only the models this key may call: routed names (exact routes and discovered models) ∩ the key's allow-list.
 * With `client_version` (how Codex asks for its catalog) the answer is Codex's `{"models":[ModelInfo…]}`;
 * without it, OpenAI's list.
 */
@Controller('v1/models')
export class ModelsController {
  constructor(
    private readonly routes: RouteTable,
    private readonly auth: AuthenticateStep,
  ) {}

  @Get()
  async list(
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
    @Query('client_version') clientVersion?: unknown,
  ): Promise<{ object: 'list'; data: ModelObject[] } | { models: CodexModelInfo[] }> {
    const visible = this.visible(await this.auth.principal(req));
    if (clientVersion === undefined) return { object: 'list', data: visible.map(toModelObject) };
    const models = visible.map((m) => ({ id: m.id, upstreamModel: m.target.model, provider: m.ownedBy, passThrough: m.target.provider.responsesNative }));
    // Codex keeps the ETag with its cached catalog (models_cache.json). The catalog is a function of these inputs.
    const etag = createHash('sha256').update(codexCatalogVersion()).update(JSON.stringify(models)).digest('base64url').slice(0, 22);
    res.setHeader('ETag', `"${etag}"`);
    return buildCodexCatalog(models);
  }

  /** Model ids may contain slashes (`openai/gpt-4o-mini`). */
  @Get('*model')
  async get(@Req() req: Request, @Param('model') parts: string | string[]): Promise<ModelObject> {
    const principal = await this.auth.principal(req);
    const model = Array.isArray(parts) ? parts.join('/') : parts;
    const m = this.visible(principal).find((x) => x.id === model);
    if (!m) throw Errors.modelNotFound(model);
    return toModelObject(m);
  }

  private visible(p: Principal): ListedModel[] {
    return this.routes.modelsFor(p.tenantId).filter((m) => matchesAny(p.allowedModels, m.id));
  }
}

function toModelObject(m: ListedModel): ModelObject {
  return { id: m.id, object: 'model', created: 0, owned_by: m.ownedBy };
}
