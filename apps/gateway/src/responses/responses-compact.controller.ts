import { Controller, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ResponsesCompactHandler } from '../handlers/responses-compact.handler';
import { DataPlanePipeline } from '../pipeline/pipeline';

@Controller('v1')
export class ResponsesCompactController {
  constructor(
    private readonly pipeline: DataPlanePipeline,
    private readonly handler: ResponsesCompactHandler,
  ) {}

  @Post('responses/compact')
  compact(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.pipeline.run(this.handler, req, res);
  }
}
