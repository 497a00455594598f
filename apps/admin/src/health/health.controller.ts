import { Controller, Get, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { DatabaseRepository } from '@gw/db';
import type { Response } from 'express';

@ApiExcludeController()
@Controller()
export class AdminHealthController {
  constructor(private readonly database: DatabaseRepository) {}

  @Get('healthz') health() {
    return { status: 'ok' };
  }

  @Get('readyz')
  async ready(@Res() res: Response): Promise<void> {
    try {
      await this.database.ping();
      res.status(200).json({ status: 'ready' });
    } catch {
      res.status(503).json({ status: 'unavailable', reason: 'database unreachable' });
    }
  }
}
