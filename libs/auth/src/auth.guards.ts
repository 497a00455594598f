import { ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { Errors } from '@gw/common';

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

@Injectable()
export class AdminGuard extends AuthGuard('admin') {
  override handleRequest<T>(err: unknown, user: T, _info: unknown, ctx: ExecutionContext): T {
    return failure(err, user, ctx) as T;
  }
}
