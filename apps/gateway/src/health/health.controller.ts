import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import { DatabaseRepository } from '@gw/db';
import { KeyCache } from '@gw/tenancy';
import type { Response } from 'express';
import { DrainService } from './drain.service';

/**
 * Liveness says the process answers; readiness says it can serve: not draining, the key set loaded (until
 * then every `/v1` request answers 503 `keys_not_loaded`), database reachable.
 */
@Controller()
export class HealthController {
  constructor(
    private readonly database: DatabaseRepository,
    private readonly drain: DrainService,
    private readonly keys: KeyCache,
  ) {}

  @Get('healthz')
  @HttpCode(200)
  health(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('readyz')
  async ready(@Res() res: Response): Promise<void> {
    if (this.drain.draining) {
      res.status(503).json({ status: 'draining' });
      return;
    }
    if (!this.keys.ready) {
      res.status(503).json({ status: 'unavailable', reason: 'keys not loaded' });
      return;
    }
    try {
      await this.database.ping();
      res.status(200).json({ status: 'ready' });
    } catch {
      res.status(503).json({ status: 'unavailable', reason: 'database unreachable' });
    }
  }
}
