import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { TenancyGatewayModule, TenancyModule } from '@gw/tenancy';
import { AdminAccessGuard } from './admin-access.guard';
import { AdminStrategy } from './admin.strategy';
import { AdminTokenRepository } from './admin-token.repository';
import { AdminTokenService } from './admin-token.service';
import { AuditInterceptor } from './audit.interceptor';
import { AuditService } from './audit.service';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { AuditRepository } from '@gw/db';
import {
  AuthFailureLimiter,
  DEFAULT_AUTH_FAILURE_LIMITS,
  GATEWAY_AUTH_FAILURE_LIMITS,
  GatewayAuthFailureLimiter,
  authBlockTable,
} from './auth-failure.limiter';
import { AdminGuard } from './auth.guards';
import { GatewayAuthGate } from './gateway-auth.gate';
import { PreBodyAuthenticator } from './pre-body.authenticator';

/**
 * Admin-token verification, and nothing else: the bootstrap root token (ADMIN_TOKEN, or generated once and
 * kept as a hash) and the `admin_tokens` table, behind the passport `admin` strategy. The admin app builds its
 * access control on it; the gateway needs it only for `GET /admin/circuits` (`GatewayAdminGuard`).
 */
@Module({
  imports: [PassportModule, TenancyModule],
  providers: [AdminTokenRepository, AdminTokenService, AdminStrategy],
  exports: [AdminTokenService],
})
export class AdminTokenModule {}

/**
 * Data plane: tenant virtual keys, resolved from the in-memory key cache; failed authentications limited
 * per client address (memory, or Redis with REDIS_URL); `GatewayAuthGate` decides (`PreBodyAuthenticator`) before any body is read.
 * Root admin tokens are accepted on the gateway's port for `/admin/circuits` only (`GatewayAdminGuard`), under the same failure budget.
 */
@Module({
  imports: [PassportModule, TenancyGatewayModule, AdminTokenModule],
  providers: [
    PreBodyAuthenticator,
    {
      provide: GatewayAuthFailureLimiter,
      inject: [APP_CONFIG],
      useFactory: (cfg: AppConfig) => new GatewayAuthFailureLimiter(authBlockTable(cfg, GATEWAY_AUTH_FAILURE_LIMITS, 'gateway')),
    },
    GatewayAuthGate,
  ],
  // `@UseGuards(GatewayAdminGuard)` builds the guard in the controller's module from these.
  exports: [TenancyGatewayModule, PreBodyAuthenticator, GatewayAuthFailureLimiter, GatewayAuthGate, AdminTokenModule],
})
export class GatewayAuthModule {}

/**
 * Control plane: admin tokens (root and per-tenant), role and tenant checks, failed-auth limiting and
 * the audit log. The admin app installs `AdminAccessGuard` and `AuditInterceptor` globally.
 */
@Module({
  imports: [PassportModule, TenancyModule, AdminTokenModule],
  providers: [
    {
      provide: AuthFailureLimiter,
      inject: [APP_CONFIG],
      useFactory: (cfg: AppConfig) => new AuthFailureLimiter(authBlockTable(cfg, DEFAULT_AUTH_FAILURE_LIMITS, 'admin')),
    },
    AdminGuard,
    AdminAccessGuard,
    AuditRepository,
    AuditService,
    AuditInterceptor,
  ],
  exports: [AdminTokenModule, AuthFailureLimiter, AdminGuard, AdminAccessGuard, AuditService, AuditInterceptor],
})
export class AdminAuthModule {}
