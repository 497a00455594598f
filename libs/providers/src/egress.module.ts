import { DynamicModule, Global, Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { resolveDatabaseUrl } from '@gw/db';
import { EGRESS_POLICY, EGRESS_RESOLVER, EgressPolicy, EgressResolver, dnsResolver } from './egress.policy';

/** What the apps' factories (createGatewayApp, createAdminApp) take besides configuration. */
export interface AppEgressOptions {
  /** Replaces DNS for the egress checks and upstream connections (default: `dns.lookup`). */
  egressResolver?: EgressResolver;
}

/**
 * The egress policy and the resolver it checks names with, for the whole app (global: the admin's provider
 * service and the gateway's upstream client share one). `resolver` replaces DNS (tests: no DNS here).
 */
@Global()
@Module({})
export class EgressModule {
  static forRoot(opts: { resolver?: EgressResolver } = {}): DynamicModule {
    return {
      module: EgressModule,
      providers: [
        { provide: EGRESS_RESOLVER, useValue: opts.resolver ?? dnsResolver },
        {
          provide: EGRESS_POLICY,
          inject: [APP_CONFIG, EGRESS_RESOLVER],
          // Without DATABASE_URL the embedded database's own loopback port is the one to protect.
          useFactory: async (cfg: AppConfig, resolver: EgressResolver) =>
            EgressPolicy.create({ ...cfg, databaseUrl: cfg.databaseUrl ?? (await resolveDatabaseUrl(cfg)) }, resolver),
        },
      ],
      exports: [EGRESS_POLICY, EGRESS_RESOLVER],
    };
  }
}
