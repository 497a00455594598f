import { Controller, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { EmbeddingsHandler } from '../handlers/embeddings.handler';
import { DataPlanePipeline } from '../pipeline/pipeline';

@Controller('v1')
export class EmbeddingsController {
  constructor(
    private readonly pipeline: DataPlanePipeline,
    private readonly handler: EmbeddingsHandler,
  ) {}

  @Post('embeddings')
  embeddings(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.pipeline.run(this.handler, req, res);
  }
}
