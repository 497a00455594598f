import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { AppConfig, AppConfigModule } from '@gw/config';
import { DatabaseModule } from '@gw/db';
import { AdminAccessGuard, AdminAuthModule, AuditInterceptor } from '@gw/auth';
import { LimitsAdminModule } from '@gw/limits';
import { MeteringAdminModule } from '@gw/metering';
import { AdminObservabilityModule } from '@gw/observability';
import { AppEgressOptions, EgressModule } from '@gw/providers';
import { RoutingModule } from '@gw/routing';
import { TenancyModule } from '@gw/tenancy';
import { AuditController } from './audit/audit.controller';
import { AdminHealthController } from './health/health.controller';
import { KeyAdminService } from './keys/key-admin.service';
import { KeysController } from './keys/keys.controller';
import { SpendController } from './limits/spend.controller';
import { PricesController } from './prices/prices.controller';
import { ProvidersController } from './providers/providers.controller';
import { RouteAdminService } from './routes/route-admin.service';
import { RoutesController } from './routes/routes.controller';
import { TenantsController } from './tenants/tenants.controller';
import { TenantTokensController, TokensController } from './tokens/tokens.controller';
import { UsageController } from './usage/usage.controller';

@Module({})
export class AdminModule {
  static forRoot(overrides?: Partial<AppConfig>, opts: AppEgressOptions = {}): DynamicModule {
    return {
      module: AdminModule,
      imports: [
        AppConfigModule.forRoot(overrides),
        DatabaseModule,
        EgressModule.forRoot({ resolver: opts.egressResolver }),
        AdminObservabilityModule.forRoot(),
        AdminAuthModule,
        TenancyModule,
        RoutingModule,
        MeteringAdminModule,
        LimitsAdminModule,
      ],
      controllers: [
        TenantsController,
        KeysController,
        ProvidersController,
        RoutesController,
        PricesController,
        UsageController,
        SpendController,
        AdminHealthController,
        TokensController,
        TenantTokensController,
        AuditController,
      ],
      // Global on purpose: every /admin route is authenticated, authorised (root-only unless it says
      // otherwise) and audited, including controllers added later that forget to ask.
      providers: [
        { provide: APP_GUARD, useClass: AdminAccessGuard },
        { provide: APP_INTERCEPTOR, useClass: AuditInterceptor },
        // Permission and scoping rules of the admin API, taking the caller's principal.
        KeyAdminService,
        RouteAdminService,
      ],
    };
  }
}
