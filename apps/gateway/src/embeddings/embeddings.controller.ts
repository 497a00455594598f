import { Controller, Post, Req, Res, UseGuards } from '@nestjs/common';
import { VirtualKeyGuard } from '@gw/auth';
import { Principal } from '@gw/tenancy';
import type { Request, Response } from 'express';
import { ProxyService } from '../proxy/proxy.service';

@Controller('v1')
@UseGuards(VirtualKeyGuard)
export class EmbeddingsController {
  constructor(private readonly proxy: ProxyService) {}

  @Post('embeddings')
  embeddings(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.proxy.embeddings(req, res, req.user as Principal);
  }
}
