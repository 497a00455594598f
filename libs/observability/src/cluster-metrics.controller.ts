import { Controller, Get, Res } from '@nestjs/common';
import { Errors } from '@gw/common';
import { PrometheusController } from '@willsoto/nestjs-prometheus';
import type { Response } from 'express';
import { register } from 'prom-client';
import { answerClusterMetrics, inClusterWorker, scrapeThroughPrimary } from './cluster.metrics';

/**
 * The gateway's `GET /metrics` (METRICS_TOKEN applies before it, as on every app): the process's own registry,
 * or in a cluster worker the whole gateway's, aggregated by the primary (cluster.metrics.ts).
 */
@Controller()
export class GatewayMetricsController extends PrometheusController {
  constructor() {
    super();
    answerClusterMetrics();
  }

  @Get()
  override async index(@Res({ passthrough: true }) response: Response): Promise<string> {
    if (!inClusterWorker()) return super.index(response);
    let text: string;
    try {
      text = await scrapeThroughPrimary();
    } catch (e) {
      // Never this worker's share alone: Prometheus would take the smaller sums for counter resets.
      throw Errors.unavailable(`The gateway's metrics could not be aggregated across its workers: ${(e as Error).message}.`);
    }
    response.header('Content-Type', register.contentType);
    return text;
  }
}
