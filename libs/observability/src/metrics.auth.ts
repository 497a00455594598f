import { OpenAIError, sha256Hex } from '@gw/common';
import type { NextFunction, Request, Response } from 'express';
import { timingSafeEqual } from 'node:crypto';

export type MetricsAuthMiddleware = (req: Request, res: Response, next: NextFunction) => void;

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (`::ffff:127.0.0.1`), which is how a dual-stack socket reports them. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/**
 * `GET /metrics` names tenants and what they spend, so it is never public by default:
 * - with a token (METRICS_TOKEN or METRICS_TOKEN_FILE), a scrape must send `Authorization: Bearer <token>`
 *   (Prometheus: `authorization.credentials_file` in the scrape job);
 * - without one, it answers only clients on loopback (a laptop's `npm start`, a sidecar), and a 403 that
 *   says how to open it to everyone else. The peer address is the socket's, never `X-Forwarded-For`; a
 *   request that carries a forwarding header (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`) came through a
 *   proxy on this host and is refused like a remote one.
 */
export function metricsAuth(token: string | undefined): MetricsAuthMiddleware {
  if (!token) {
    return (req, _res, next) => {
      // A forwarding header means a proxy on this host relayed someone else's request over loopback.
      const h = req.headers;
      if (isLoopback(req.socket?.remoteAddress) && !h['x-forwarded-for'] && !h.forwarded && !h['x-real-ip']) return next();
      next(
        new OpenAIError(
          403,
          'GET /metrics answers only on loopback when no METRICS_TOKEN is configured; set METRICS_TOKEN (or METRICS_TOKEN_FILE) to scrape it from elsewhere.',
          'invalid_request_error',
          'metrics_loopback_only',
        ),
      );
    };
  }
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
