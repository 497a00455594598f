import 'reflect-metadata';
import { Logger, LogLevel, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import { AppConfig, parseConfig } from '@gw/config';
import { Errors, configureHttpApp, installGracefulShutdown } from '@gw/common';
import { ValidationError } from 'class-validator';
import { AdminModule } from './admin.module';
import { buildOpenApi } from './openapi';

function logLevels(level: AppConfig['logLevel']): LogLevel[] | false {
  if (level === 'silent') return false;
  const all: LogLevel[] = ['error', 'warn', 'log', 'debug'];
  return all.slice(0, { error: 0, warn: 1, info: 2, debug: 3 }[level] + 1);
}

/** The first failing field, with its path (e.g. `targets.0.providerId`), becomes the error's `param`. */
function firstProblem(errors: ValidationError[], path = ''): { param: string; message: string } {
  const e = errors[0];
  const param = path ? `${path}.${e.property}` : e.property;
  if (e.constraints) return { param, message: Object.values(e.constraints)[0] };
  return firstProblem(e.children ?? [], param);
}

export async function createAdminApp(overrides?: Partial<AppConfig>): Promise<NestExpressApplication> {
  const cfg = { ...parseConfig(), ...overrides };
  const app = await NestFactory.create<NestExpressApplication>(AdminModule.forRoot(overrides), { bodyParser: false, logger: logLevels(cfg.logLevel) });
  configureHttpApp(app, '1mb');
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      exceptionFactory: (errors) => {
        const { param, message } = firstProblem(errors);
        return Errors.badRequest(message.startsWith(param.split('.').pop()!) ? `${param}: ${message}` : `${param}: ${message}`, param);
      },
    }),
  );
  SwaggerModule.setup('admin/docs', app, () => buildOpenApi(app), { jsonDocumentUrl: 'admin/docs/openapi.json' });
  return app;
}

async function main(): Promise<void> {
  const cfg = parseConfig();
  const app = await createAdminApp();
  installGracefulShutdown([app]);
  await app.listen(cfg.adminPort, cfg.host);
  new Logger('Admin').log(`admin API on http://${cfg.host}:${cfg.adminPort}/admin (docs: /admin/docs)`);
}

if (require.main === module) {
  main().catch((e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  });
}
