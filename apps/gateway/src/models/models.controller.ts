import { Controller, Get, Param, Req, UseGuards } from '@nestjs/common';
import { VirtualKeyGuard } from '@gw/auth';
import { Errors, matchesAny } from '@gw/common';
import { RouteTable } from '@gw/routing';
import { Principal } from '@gw/tenancy';
import type { Request } from 'express';

interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/** Only the models this key may call: routed names (exact routes and discovered models) ∩ the key's allow-list. */
@Controller('v1/models')
@UseGuards(VirtualKeyGuard)
export class ModelsController {
  constructor(private readonly routes: RouteTable) {}

  @Get()
  list(@Req() req: Request): { object: 'list'; data: ModelObject[] } {
    return { object: 'list', data: this.visible(req.user as Principal) };
  }

  /** Model ids may contain slashes (`openai/gpt-4o-mini`). */
  @Get('*model')
  get(@Req() req: Request, @Param('model') parts: string | string[]): ModelObject {
    const model = Array.isArray(parts) ? parts.join('/') : parts;
    const m = this.visible(req.user as Principal).find((x) => x.id === model);
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
