import { Controller, Get, Param, Req } from '@nestjs/common';
import { Errors, matchesAny } from '@gw/common';
import { RouteTable } from '@gw/routing';
import { Principal } from '@gw/tenancy';
import type { Request } from 'express';
import { AuthenticateStep } from '../pipeline/authenticate.step';

interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/** Only the models this key may call: routed names (exact routes and discovered models) ∩ the key's allow-list. */
@Controller('v1/models')
export class ModelsController {
  constructor(
    private readonly routes: RouteTable,
    private readonly auth: AuthenticateStep,
  ) {}

  @Get()
  async list(@Req() req: Request): Promise<{ object: 'list'; data: ModelObject[] }> {
    return { object: 'list', data: this.visible(await this.auth.principal(req)) };
  }

  /** Model ids may contain slashes (`openai/gpt-4o-mini`). */
  @Get('*model')
  async get(@Req() req: Request, @Param('model') parts: string | string[]): Promise<ModelObject> {
    const principal = await this.auth.principal(req);
    const model = Array.isArray(parts) ? parts.join('/') : parts;
    const m = this.visible(principal).find((x) => x.id === model);
    if (!m) throw Errors.modelNotFound(model);
    return m;
  }

  private visible(p: Principal): ModelObject[] {
    return this.routes
      .modelsFor(p.tenantId)
      .filter((m) => matchesAny(p.allowedModels, m.id))
      .map((m) => ({ id: m.id, object: 'model' as const, created: 0, owned_by: m.ownedBy }));
  }
}
