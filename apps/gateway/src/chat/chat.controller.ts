import { Controller, Post, Req, Res, UseGuards } from '@nestjs/common';
import { VirtualKeyGuard } from '@gw/auth';
import { Principal } from '@gw/tenancy';
import type { Request, Response } from 'express';
import { ProxyService } from '../proxy/proxy.service';

@Controller('v1')
@UseGuards(VirtualKeyGuard)
export class ChatController {
  constructor(private readonly proxy: ProxyService) {}

  @Post('chat/completions')
  chat(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.proxy.chat(req, res, req.user as Principal);
  }
}
