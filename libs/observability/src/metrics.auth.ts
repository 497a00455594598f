import { OpenAIError, sha256Hex } from '@gw/common';
import type { NextFunction, Request, Response } from 'express';
import { timingSafeEqual } from 'node:crypto';

export type MetricsAuthMiddleware = (req: Request, res: Response, next: NextFunction) => void;

/**
 * `GET /metrics` behind `METRICS_TOKEN`: with a token configured, a scrape must send
 * `Authorization: Bearer <token>` (Prometheus: `authorization.credentials_file` in the scrape job); without
 * one, the endpoint stays open (a laptop, or a port only the monitoring network reaches). The metrics name
 * tenants and what they spend, hence not for the whole data-plane audience.
 */
export function metricsAuth(token: string | undefined): MetricsAuthMiddleware {
  if (!token) return (_req, _res, next) => next();
  const expected = Buffer.from(sha256Hex(token), 'hex');
  return (req, res, next) => {
    const m = /^Bearer +([^\s]+) *$/i.exec(req.headers.authorization ?? '');
    if (m && timingSafeEqual(Buffer.from(sha256Hex(m[1]), 'hex'), expected)) return next();
    res.setHeader('www-authenticate', 'Bearer realm="metrics"');
    next(
      new OpenAIError(
        401,
        m ? 'Incorrect metrics token.' : 'GET /metrics needs "Authorization: Bearer <METRICS_TOKEN>".',
        'invalid_request_error',
        m ? 'invalid_api_key' : 'missing_api_key',
      ),
    );
  };
}
