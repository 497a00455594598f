import { Controller, Post, Req, Res, UseGuards } from '@nestjs/common';
import { VirtualKeyGuard } from '@gw/auth';
import { Principal } from '@gw/tenancy';
import type { Request, Response } from 'express';
import { ResponsesService } from './responses.service';

@Controller('v1')
@UseGuards(VirtualKeyGuard)
export class ResponsesController {
  constructor(private readonly responses: ResponsesService) {}

  @Post('responses')
  create(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.responses.handle(req, res, req.user as Principal);
  }
}
