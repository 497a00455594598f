import { Controller, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ChatHandler } from '../handlers/chat.handler';
import { DataPlanePipeline } from '../pipeline/pipeline';

@Controller('v1')
export class ChatController {
  constructor(
    private readonly pipeline: DataPlanePipeline,
    private readonly handler: ChatHandler,
  ) {}

  @Post('chat/completions')
  chat(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.pipeline.run(this.handler, req, res);
  }
}
