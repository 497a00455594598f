import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { Errors, OpenAIError } from '@gw/common';
import type { Request } from 'express';
import { isAdminPrincipal, peerIp } from './admin-principal';
import { AuthFailureLimiter, GatewayAuthFailureLimiter } from './auth-failure.limiter';
import { PreBodyAuthenticator, authDecisionOf } from './pre-body.authenticator';

/** Passport reports "no credentials" as a bare failure; turn it into the OpenAI-shaped 401. */
function failure(err: unknown, user: unknown, ctx: ExecutionContext) {
  if (err) throw err;
  if (!user) {
    const auth = ctx.switchToHttp().getRequest().headers?.authorization as string | undefined;
    throw auth ? Errors.invalidKey() : Errors.missingKey();
  }
  return user;
}

/** 429 for an address that failed authentication too often: its credential is not even looked at. */
export function tooManyAuthFailures(retryAfterSeconds: number): OpenAIError {
  return new OpenAIError(
    429,
    `Too many failed authentication attempts from this address; retry in ${retryAfterSeconds} s.`,
    'rate_limit_exceeded',
    'too_many_auth_failures',
    null,
    { 'Retry-After': String(retryAfterSeconds) },
  );
}

/**
 * Only a credential the strategy looked at and refused is a guess (401 invalid_api_key: unknown, revoked,
 * expired, or not shaped like a token at all); no credential, a refused source address or a database error is not.
 */
function isGuess(err: unknown, user: unknown, ctx: ExecutionContext): boolean {
  if (err instanceof OpenAIError) return err.getStatus() === 401;
  return !err && !user && !!ctx.switchToHttp().getRequest<Request>().headers?.authorization;
}

/**
 * Data-plane authentication (virtual keys), with failed attempts counted per source address like the
 * admin API's, with the gateway's own counters and limits (`GatewayAuthFailureLimiter`). The decision was
 * made before the body was read (`GatewayAuthGate`); this answers with it, so the bearer is parsed and
 * looked up once. A route outside the gate's paths is authenticated here the same way.
 */
@Injectable()
export class VirtualKeyGuard implements CanActivate {
  constructor(
    private readonly failures: GatewayAuthFailureLimiter,
    private readonly auth: PreBodyAuthenticator,
  ) {}

  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<Request>();
    let decision = authDecisionOf(req);
    if (!decision) {
      const wait = this.failures.retryAfterSeconds(peerIp(req));
      if (wait > 0) throw tooManyAuthFailures(wait);
      decision = this.auth.authenticate(req);
    }
    if (!decision.ok) {
      if (decision.guess) this.failures.recordFailure(peerIp(req));
      throw decision.error;
    }
    req.user = decision.principal;
    return true;
  }
}

/**
 * Admin authentication, with failed attempts counted per source address: a blocked address gets 429
 * before its credential is even looked at. Idempotent, so a controller that still lists it in
 * `@UseGuards` after the global `AdminAccessGuard` ran does not authenticate twice.
 */
@Injectable()
export class AdminGuard extends AuthGuard('admin') {
  constructor(private readonly failures: AuthFailureLimiter) {
    super();
  }

  override async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<Request>();
    if (isAdminPrincipal(req.user)) return true;
    const wait = this.failures.retryAfterSeconds(peerIp(req));
    if (wait > 0) throw tooManyAuthFailures(wait);
    return (await super.canActivate(ctx)) as boolean;
  }

  override handleRequest<T>(err: unknown, user: T, _info: unknown, ctx: ExecutionContext): T {
    if (isGuess(err, user, ctx)) this.failures.recordFailure(peerIp(ctx.switchToHttp().getRequest<Request>()));
    return failure(err, user, ctx) as T;
  }
}
