import { ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { Errors, OpenAIError } from '@gw/common';
import type { Request } from 'express';
import { isAdminPrincipal, peerIp } from './admin-principal';
import { AuthFailureLimiter } from './auth-failure.limiter';

/** Passport reports "no credentials" as a bare failure; turn it into the OpenAI-shaped 401. */
function failure(err: unknown, user: unknown, ctx: ExecutionContext) {
  if (err) throw err;
  if (!user) {
    const auth = ctx.switchToHttp().getRequest().headers?.authorization as string | undefined;
    throw auth ? Errors.invalidKey() : Errors.missingKey();
  }
  return user;
}

@Injectable()
export class VirtualKeyGuard extends AuthGuard('virtual-key') {
  override handleRequest<T>(err: unknown, user: T, _info: unknown, ctx: ExecutionContext): T {
    return failure(err, user, ctx) as T;
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
    if (wait > 0) {
      throw new OpenAIError(
        429,
        `Too many failed authentication attempts from this address; retry in ${wait} s.`,
        'rate_limit_exceeded',
        'too_many_auth_failures',
        null,
        { 'Retry-After': String(wait) },
      );
    }
    return (await super.canActivate(ctx)) as boolean;
  }

  override handleRequest<T>(err: unknown, user: T, _info: unknown, ctx: ExecutionContext): T {
    // Only a token the strategy looked at and refused is a guess (whether it came in the header or, as
    // passport-http-bearer also allows, in `access_token`); no credential at all, or a database error, is not.
    if (err instanceof OpenAIError && err.getStatus() === 401) this.failures.recordFailure(peerIp(ctx.switchToHttp().getRequest<Request>()));
    return failure(err, user, ctx) as T;
  }
}
