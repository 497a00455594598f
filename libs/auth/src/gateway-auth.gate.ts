import { Injectable } from '@nestjs/common';
import { skipBodyParsing } from '@gw/common';
import type { NextFunction, Request, Response } from 'express';
import { GatewayAuthFailureLimiter, authBucketOf } from './auth-failure.limiter';
import { bearerToken } from './header-bearer.strategy';
import { looksLikeVirtualKey } from './virtual-key.strategy';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Express middleware the gateway installs before the JSON body parser. A request to `/v1/…` with a body
 * that `VirtualKeyGuard` is bound to refuse without looking anything up —
 *   - from an address blocked for failed authentications (429 `too_many_auth_failures`),
 *   - without an `Authorization: Bearer` credential (401 `missing_api_key`), or
 *   - with a credential not shaped like a virtual key (401 `invalid_api_key`)
 * — is not read: up to BODY_LIMIT (50 MB) of JSON is never parsed for it. The refusal itself, its log line
 * and metrics, and the failure count stay the guard's, so they are the same whatever the body.
 */
@Injectable()
export class GatewayAuthGate {
  constructor(private readonly failures: GatewayAuthFailureLimiter) {}

  readonly middleware = (req: Request, res: Response, next: NextFunction): void => {
    if (BODY_METHODS.has(req.method) && req.path.startsWith('/v1/') && this.refused(req)) skipBodyParsing(req, res);
    next();
  };

  private refused(req: Request): boolean {
    if (this.failures.retryAfterSeconds(authBucketOf(req)) > 0) return true;
    const token = bearerToken(req.headers.authorization);
    return !token || !looksLikeVirtualKey(token);
  }
}
