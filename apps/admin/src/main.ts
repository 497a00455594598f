import 'reflect-metadata';
import { ArgumentMetadata, LogLevel, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as PinoLogger } from 'nestjs-pino';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import { AppConfig, parseConfig } from '@gw/config';
import { describeDatabase, startDatabaseProcess } from '@gw/db';
import { printStartBanner } from '@gw/observability';
import { Errors, configureHttpApp, installGracefulShutdown } from '@gw/common';
import { AppEgressOptions, registerOwnServer, validateEgressConfig } from '@gw/providers';
import { generatedAdminToken } from '@gw/auth';
import { ValidationError } from 'class-validator';
import { AdminModule } from './admin.module';
import { buildOpenApi } from './openapi';
import { nullWhereNotNullable } from './nullable.guard';

function logLevels(level: AppConfig['logLevel']): LogLevel[] | false {
  if (level === 'silent') return false;
  const all: LogLevel[] = ['error', 'warn', 'log', 'debug'];
  return all.slice(0, { error: 0, warn: 1, info: 2, debug: 3 }[level] + 1);
}

/**
 * The first failing field, with its path (e.g. `targets[0].providerId`, the form services use too),
 * becomes the error's `param`.
 */
function firstProblem(errors: ValidationError[], path = ''): { param: string; message: string } {
  const e = errors[0];
  const param = !path ? e.property : /^\d+$/.test(e.property) ? `${path}[${e.property}]` : `${path}.${e.property}`;
  // class-validator lists a field's constraints bottom-up; the last one is the decorator written first,
  // the basic type check, so a missing `name` says "must be a string", not "may use letters…".
  if (e.constraints) return { param, message: Object.values(e.constraints).pop()! };
  if (!e.children?.length) return { param, message: `${param} is invalid` };
  return firstProblem(e.children, param);
}

/**
 * DTO classes compile with ES2022 field semantics, so every field a client left out is an own `undefined`
 * property; spread into a merge (`{ ...current.limits, ...patch.limits }`) it would erase the stored value.
 */
function dropUndefined<T>(value: T): T {
  if (Array.isArray(value)) value.forEach(dropUndefined);
  else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- drops undefined fields of a parsed body in place
      if (o[k] === undefined) delete o[k];
      else dropUndefined(o[k]);
    }
  }
  return value;
}

class AdminValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const out = dropUndefined((await super.transform(value, metadata)) as unknown);
    if (metadata.type === 'body' || metadata.type === 'query') {
      const param = nullWhereNotNullable(out);
      if (param) throw Errors.badRequest(`${param}: must not be null`, param);
    }
    return out;
  }
}

export async function createAdminApp(overrides?: Partial<AppConfig>, opts: AppEgressOptions = {}): Promise<NestExpressApplication> {
  const cfg = { ...parseConfig(), ...overrides };
  validateEgressConfig(cfg);
  const app = await NestFactory.create<NestExpressApplication>(AdminModule.forRoot(overrides, opts), {
    bodyParser: false,
    logger: logLevels(cfg.logLevel),
    // Start-up lines wait for the JSON logger instead of going out in Nest's text format.
    bufferLogs: true,
  });
  app.useLogger(app.get(PinoLogger));
  // Whatever port it ends up on (0 in tests), no provider may point back at it.
  registerOwnServer(app.getHttpServer());
  configureHttpApp(app, '1mb', { trustedProxies: cfg.trustedProxies, clientLimits: cfg });
  app.useGlobalPipes(
    new AdminValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      exceptionFactory: (errors) => {
        const { param, message } = firstProblem(errors);
        return Errors.badRequest(`${param}: ${message}`, param);
      },
    }),
  );
  SwaggerModule.setup('admin/docs', app, () => buildOpenApi(app), { jsonDocumentUrl: 'admin/docs/openapi.json' });
  return app;
}

async function main(): Promise<void> {
  const cfg = parseConfig();
  // Without DATABASE_URL: the embedded PGlite in a child process, stopped after this app has drained.
  const db = await startDatabaseProcess(cfg);
  const app = await createAdminApp(db ? { databaseUrl: db.url } : undefined);
  installGracefulShutdown([app], async () => db?.stop(), { graceMs: cfg.shutdownGraceMs });
  await app.listen(cfg.adminPort, cfg.host);
  printStartBanner(cfg, { admin: true, database: describeDatabase(cfg, db), generatedAdminToken: generatedAdminToken([app]) });
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  });
}
