import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { KeyCache, TenancyModule } from '@gw/tenancy';
import { AdminAccessGuard } from './admin-access.guard';
import { AdminStrategy } from './admin.strategy';
import { AdminTokenRepository } from './admin-token.repository';
import { AdminTokenService } from './admin-token.service';
import { AuditInterceptor } from './audit.interceptor';
import { AuditRepository } from './audit.repository';
import { AuditService } from './audit.service';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { AuthFailureLimiter, DEFAULT_AUTH_FAILURE_LIMITS, GATEWAY_AUTH_FAILURE_LIMITS, GatewayAuthFailureLimiter, authBlockTable } from './auth-failure.limiter';
import { AdminGuard } from './auth.guards';
import { GatewayAuthGate } from './gateway-auth.gate';
import { PreBodyAuthenticator } from './pre-body.authenticator';

/**
 * Data plane: tenant virtual keys, resolved from the in-memory key cache; failed authentications limited
 * per client address (memory, or Redis with REDIS_URL); `GatewayAuthGate` decides (`PreBodyAuthenticator`) before any body is read.
 */
@Module({
  imports: [PassportModule, TenancyModule],
  providers: [
    KeyCache,
    PreBodyAuthenticator,
    {
      provide: GatewayAuthFailureLimiter,
      inject: [APP_CONFIG],
      useFactory: (cfg: AppConfig) => new GatewayAuthFailureLimiter(authBlockTable(cfg, GATEWAY_AUTH_FAILURE_LIMITS, 'gateway')),
    },
    GatewayAuthGate,
  ],
  exports: [KeyCache, TenancyModule, PreBodyAuthenticator, GatewayAuthFailureLimiter, GatewayAuthGate],
})
export class GatewayAuthModule {}

/**
 * Control plane: admin tokens (root and per-tenant), role and tenant checks, failed-auth limiting and
 * the audit log. The admin app installs `AdminAccessGuard` and `AuditInterceptor` globally.
 */
@Module({
  imports: [PassportModule, TenancyModule],
  providers: [
    { provide: AuthFailureLimiter, inject: [APP_CONFIG], useFactory: (cfg: AppConfig) => new AuthFailureLimiter(authBlockTable(cfg, DEFAULT_AUTH_FAILURE_LIMITS, 'admin')) },
    AdminTokenRepository,
    AdminTokenService,
    AdminStrategy,
    AdminGuard,
    AdminAccessGuard,
    AuditRepository,
    AuditService,
    AuditInterceptor,
  ],
  exports: [AdminTokenService, AuthFailureLimiter, AdminGuard, AdminAccessGuard, AuditService, AuditInterceptor],
})
export class AdminAuthModule {}
