import { Global, Module } from '@nestjs/common';
import { ConfigModule as NestConfigModule } from '@nestjs/config';
import { AppConfig } from './app-config';
import { parseConfig } from './config.schema';

export const APP_CONFIG = Symbol('APP_CONFIG');

/**
 * Wraps @nestjs/config: it reads `.env` (if present) into the environment and runs our validation.
 * Services inject the parsed, typed `AppConfig` under `APP_CONFIG` rather than reading strings.
 */
@Global()
@Module({})
export class AppConfigModule {
  static forRoot(overrides?: Partial<AppConfig>) {
    return {
      module: AppConfigModule,
      imports: [NestConfigModule.forRoot({ isGlobal: true, cache: true, validate: (env) => (parseConfig(env as Record<string, string>), env) })],
      providers: [{ provide: APP_CONFIG, useFactory: () => ({ ...parseConfig(), ...overrides }) }],
      exports: [APP_CONFIG],
    };
  }
}
