import { Injectable } from '@nestjs/common';
import { skipBodyParsing } from '@gw/common';
import type { NextFunction, Request, Response } from 'express';
import { peerIp } from './admin-principal';
import { GatewayAuthFailureLimiter } from './auth-failure.limiter';
import { tooManyAuthFailures } from './auth.guards';
import { AuthDecision, PreBodyAuthenticator, attachAuthDecision } from './pre-body.authenticator';

/**
 * Express middleware the gateway installs before the JSON body parser: every request to `/v1/…` is
 * authenticated here, from its head, before a byte of its body is read —
 *   - from an address blocked for failed authentications: 429 `too_many_auth_failures`;
 *   - otherwise `PreBodyAuthenticator` (no credential, wrong shape, unknown, revoked, expired key, address
 *     outside the key's `allowedIps`): all from memory, no database read.
 * The decision is attached to the request; a refused request's body is never read (nor drained: the
 * connection is closed after the answer), so an anonymous caller cannot make the gateway read or parse up to
 * BODY_LIMIT (50 MB), nor hold a connection open by trickling a body. The refusal itself, its log line and
 * metrics, and the failure count stay the guard's (`VirtualKeyGuard`), which answers with the decision.
 */
@Injectable()
export class GatewayAuthGate {
  constructor(
    private readonly failures: GatewayAuthFailureLimiter,
    private readonly auth: PreBodyAuthenticator,
  ) {}

  readonly middleware = (req: Request, res: Response, next: NextFunction): void => {
    if (req.path.startsWith('/v1/')) {
      const decision = this.decide(req);
      attachAuthDecision(req, decision);
      if (!decision.ok) skipBodyParsing(req, res);
    }
    next();
  };

  private decide(req: Request): AuthDecision {
    const wait = this.failures.retryAfterSeconds(peerIp(req));
    if (wait > 0) return { ok: false, error: tooManyAuthFailures(wait), guess: false };
    return this.auth.authenticate(req);
  }
}
