import { Injectable } from '@nestjs/common';
import { skipBodyParsing } from '@gw/common';
import type { NextFunction, Request, Response } from 'express';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { GatewayAuthFailureLimiter, authBucketOf } from './auth-failure.limiter';
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
 * metrics, and the failure count are the gateway's authenticate step's, which answers with the decision.
 */
@Injectable()
export class GatewayAuthGate {
  constructor(
    private readonly failures: GatewayAuthFailureLimiter,
    private readonly auth: PreBodyAuthenticator,
  ) {}

  readonly middleware = (req: Request, res: Response, next: NextFunction): void => {
    if (req.path.startsWith('/v1/')) this.gate(req, res);
    else if (expectsContinue(req)) res.writeContinue();
    next();
  };

  /**
   * Decides a `/v1/…` request from its head and attaches the decision; a refused one is marked so its body is
   * never read. `Expect: 100-continue` (curl sends it for bodies over 1 MB): only a request we will read is
   * told to send its body; a refused one gets its answer instead and never uploads it (see `answerExpectContinue`).
   */
  gate(req: IncomingMessage, res: ServerResponse): void {
    const decision = this.decide(req);
    attachAuthDecision(req, decision);
    if (!decision.ok) skipBodyParsing(req, res);
    else if (expectsContinue(req)) res.writeContinue();
  }

  /**
   * Node answers `100 Continue` itself unless the server has a `checkContinue` listener; this one hands the
   * request on as usual and leaves the interim answer to the middleware above, after the decision.
   */
  static answerExpectContinue(server: Server): void {
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res));
  }

  /** The decision for a request head: a blocked address first (429, its credential not even looked at). */
  decide(req: IncomingMessage): AuthDecision {
    const wait = this.failures.retryAfterSeconds(authBucketOf(req));
    if (wait > 0) return { ok: false, error: tooManyAuthFailures(wait), guess: false };
    return this.auth.authenticate(req);
  }
}

function expectsContinue(req: IncomingMessage): boolean {
  const e = req.headers.expect;
  return typeof e === 'string' && e.toLowerCase() === '100-continue';
}
