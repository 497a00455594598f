import 'reflect-metadata';
import { LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Logger as PinoLogger } from 'nestjs-pino';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { GatewayAuthGate, generatedAdminToken } from '@gw/auth';
import { AppEgressOptions, registerOwnServer, validateEgressConfig } from '@gw/providers';
import { AppConfig, parseConfig } from '@gw/config';
import { describeDatabase, startDatabaseProcess } from '@gw/db';
import { printStartBanner } from '@gw/observability';
import { configureHttpApp, installGracefulShutdown } from '@gw/common';
import { GatewayModule } from './gateway.module';
import { DrainService } from './health/drain.service';
import { ResponsesSocketServer } from './handlers/responses-socket.server';
import { superviseWorkersIfPrimary } from './cluster/cluster.supervisor';
import { DataPlaneEdge } from './edge/data-plane.edge';

export function nestLogLevels(level: AppConfig['logLevel']): LogLevel[] | false {
  const all: LogLevel[] = ['error', 'warn', 'log', 'debug'];
  if (level === 'silent') return false;
  const idx = { error: 0, warn: 1, info: 2, debug: 3 }[level];
  return all.slice(0, idx + 1);
}

/** Builds the data-plane app (not listening yet): used by main, the all-in-one start and tests. */
export async function createGatewayApp(overrides?: Partial<AppConfig>, opts: AppEgressOptions = {}): Promise<NestExpressApplication> {
  const cfg = { ...parseConfig(), ...overrides };
  validateEgressConfig(cfg);
  const app = await NestFactory.create<NestExpressApplication>(GatewayModule.forRoot(overrides, opts), {
    bodyParser: false,
    logger: nestLogLevels(cfg.logLevel),
    // Start-up lines wait for the JSON logger instead of going out in Nest's text format.
    bufferLogs: true,
  });
  app.useLogger(app.get(PinoLogger));
  // Whatever port it ends up on (0 in tests), no provider may point back at it.
  registerOwnServer(app.getHttpServer());
  // First of all middleware: a draining gateway refuses new work before parsing a (possibly 50 MB) body.
  app.use(app.get(DrainService).middleware);
  // Before the body parser: POST /v1/… without a key-shaped credential, or from an address blocked for
  // failed authentications, is refused without reading its body.
  configureHttpApp(app, cfg.bodyLimit, { beforeBody: [app.get(GatewayAuthGate).middleware], trustedProxies: cfg.trustedProxies, clientLimits: cfg });
  // `Expect: 100-continue` is answered after that decision, so a refused client never uploads its body.
  GatewayAuthGate.answerExpectContinue(app.getHttpServer());
  // The Responses API over WebSocket (Codex's built-in provider): authenticated at the upgrade, like a request.
  app.get(ResponsesSocketServer).attach(app.getHttpServer());
  // The data plane's routes are answered ahead of Express (same edge behaviour, a fraction of the cost).
  app.get(DataPlaneEdge).mount(app.getHttpServer(), app.getHttpAdapter().getInstance());
  return app;
}

async function main(): Promise<void> {
  const cfg = parseConfig();
  // GATEWAY_WORKERS > 1 (which needs DATABASE_URL): this process only supervises; each worker runs the rest of main().
  if (superviseWorkersIfPrimary(cfg)) return;
  // Without DATABASE_URL: the embedded PGlite in a child process, stopped after this app has drained.
  const db = await startDatabaseProcess(cfg);
  const app = await createGatewayApp(db ? { databaseUrl: db.url } : undefined);
  installGracefulShutdown([app], async () => db?.stop(), { graceMs: cfg.shutdownGraceMs });
  await app.listen(cfg.gatewayPort, cfg.host);
  printStartBanner(cfg, { gateway: true, database: describeDatabase(cfg, db), generatedAdminToken: generatedAdminToken([app]) });
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  });
}
