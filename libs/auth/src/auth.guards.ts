import { ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { Errors, OpenAIError, sha256Hex } from '@gw/common';
import type { Request } from 'express';
import { isAdminPrincipal } from './admin-principal';
import { AdminTokenService } from './admin-token.service';
import { AuthFailureLimiter, GatewayAuthFailureLimiter, authBucketOf } from './auth-failure.limiter';
import { bearerToken } from './header-bearer.strategy';

/** Passport reports "no credentials" as a bare failure; turn it into the OpenAI-shaped 401. */
function failure(err: unknown, user: unknown, ctx: ExecutionContext) {
  if (err) throw err as Error;
  if (!user) {
    const auth = ctx.switchToHttp().getRequest<{ headers?: { authorization?: string } }>().headers?.authorization;
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

/** Only a credential that was looked at and refused is a guess (401: unknown, revoked, expired, malformed). */
function isGuess(err: unknown): boolean {
  return err instanceof OpenAIError && err.getStatus() === 401;
}

/**
 * Authentication under a failed-attempt budget, shared by both guards:
 *  1. a blocked address bucket gets 429 before its credential is looked at (memory only: no I/O);
 *  2. no credential: passport answers 401 missing_api_key, which is no guess;
 *  3. a credential already known good (`proven`) is judged without reserving anything (the hot path);
 *  4. any other credential first reserves one of the bucket's places (atomically: concurrent guesses
 *     cannot all slip through), then is judged; a success gives the place back, a refusal keeps it.
 */
async function underBudget(
  req: Request,
  failures: AuthFailureLimiter,
  proven: (token: string, req: Request) => boolean,
  authenticate: () => Promise<boolean>,
): Promise<boolean> {
  const bucket = authBucketOf(req);
  const wait = failures.retryAfterSeconds(bucket);
  if (wait > 0) throw tooManyAuthFailures(wait);
  const token = bearerToken(req.headers?.authorization);
  if (!token) return authenticate();
  if (proven(token, req)) {
    try {
      return await authenticate();
    } catch (e) {
      // Known good a moment ago, refused now (revoked meanwhile): still a failure, counted.
      if (isGuess(e)) await failures.recordFailure(bucket);
      throw e;
    }
  }
  const r = await failures.reserve(bucket);
  if (!r.ok) throw tooManyAuthFailures(Math.max(1, Math.ceil(r.retryAfterMs / 1000)));
  try {
    const ok = await authenticate();
    failures.release(r.ticket);
    return ok;
  } catch (e) {
    if (isGuess(e)) await failures.fail(r.ticket);
    else failures.release(r.ticket);
    throw e;
  }
}

/**
 * Admin authentication, with failed attempts counted per client address bucket: a blocked address gets
 * 429 before its credential is even looked at. Idempotent, so a controller that still lists it in
 * `@UseGuards` after the global `AdminAccessGuard` ran does not authenticate twice. The root token and
 * admin tokens that succeeded lately from this process reserve nothing.
 */
@Injectable()
export class AdminGuard extends AuthGuard('admin') {
  private readonly proven = new Set<string>();

  constructor(
    private readonly failures: AuthFailureLimiter,
    private readonly tokens: AdminTokenService,
  ) {
    super();
  }

  override async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<Request>();
    if (isAdminPrincipal(req.user)) return true;
    const ok = await underBudget(
      req,
      this.failures,
      (token) => this.tokens.isRoot(token) || this.proven.has(sha256Hex(token)),
      async () => (await super.canActivate(ctx)) as boolean,
    );
    const token = bearerToken(req.headers?.authorization);
    if (ok && token && !this.tokens.isRoot(token)) {
      if (this.proven.size >= 1000) this.proven.clear();
      this.proven.add(sha256Hex(token));
    }
    return ok;
  }

  override handleRequest<T>(err: unknown, user: T, _info: unknown, ctx: ExecutionContext): T {
    if (err && isGuess(err)) {
      const token = bearerToken(ctx.switchToHttp().getRequest<Request>().headers?.authorization);
      if (token) this.proven.delete(sha256Hex(token));
    }
    return failure(err, user, ctx) as T;
  }
}

/**
 * `AdminGuard` on the gateway's port (`GET /admin/circuits`): the root token's allowance there spends the
 * gateway's failure budget, the one virtual-key guesses from the same address spend, not a second one.
 */
@Injectable()
export class GatewayAdminGuard extends AdminGuard {
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor -- Nest injects by these parameter types, not the parent's
  constructor(failures: GatewayAuthFailureLimiter, tokens: AdminTokenService) {
    super(failures, tokens);
  }
}
