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
import { AuthFailureLimiter, GatewayAuthFailureLimiter } from './auth-failure.limiter';
import { AdminGuard } from './auth.guards';
import { GatewayAuthGate } from './gateway-auth.gate';
import { PreBodyAuthenticator } from './pre-body.authenticator';
import { VirtualKeyStrategy } from './virtual-key.strategy';

/**
 * Data plane: tenant virtual keys, resolved from the in-memory key set; failed authentications limited
 * per source address; `GatewayAuthGate` decides (`PreBodyAuthenticator`) before any body is read.
 */
@Module({
  imports: [PassportModule, TenancyModule],
  providers: [KeyCache, VirtualKeyStrategy, PreBodyAuthenticator, { provide: GatewayAuthFailureLimiter, useFactory: () => new GatewayAuthFailureLimiter() }, GatewayAuthGate],
  exports: [KeyCache, TenancyModule, VirtualKeyStrategy, PreBodyAuthenticator, GatewayAuthFailureLimiter, GatewayAuthGate],
})
export class GatewayAuthModule {}

/**
 * Control plane: admin tokens (root and per-tenant), role and tenant checks, failed-auth limiting and
 * the audit log. The admin app installs `AdminAccessGuard` and `AuditInterceptor` globally.
 */
@Module({
  imports: [PassportModule, TenancyModule],
  providers: [
    { provide: AuthFailureLimiter, useFactory: () => new AuthFailureLimiter() },
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
