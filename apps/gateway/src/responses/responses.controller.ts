import { Controller, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ResponsesHandler } from '../handlers/responses.handler';
import { DataPlanePipeline } from '../pipeline/pipeline';

@Controller('v1')
export class ResponsesController {
  constructor(
    private readonly pipeline: DataPlanePipeline,
    private readonly handler: ResponsesHandler,
  ) {}

  @Post('responses')
  create(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.pipeline.run(this.handler, req, res);
  }
}
