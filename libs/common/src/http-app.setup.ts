import { INestApplication, Logger } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { json } from 'express';
import type { NextFunction, Request, Response } from 'express';
import { OpenAIExceptionFilter, toOpenAIError } from './openai-exception.filter';
import { assignRequestId } from './request-id';

/**
 * What both apps share at the HTTP edge: a request id on every response, JSON bodies up to the
 * configured limit whatever the content-type (curl -d sends form-encoded by default), and the
 * OpenAI-shaped error filter.
 */
export function configureHttpApp(app: NestExpressApplication, bodyLimit: string): void {
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req: Parameters<typeof assignRequestId>[0], res: Parameters<typeof assignRequestId>[1], next: () => void) => {
    assignRequestId(req, res);
    next();
  });
  // Our own parser wrapper: its errors become OpenAI errors here, before Nest maps them to a bare 400.
  const parse = json({ limit: bodyLimit, type: () => true });
  app.use((req: Request, res: Response, next: NextFunction) => parse(req, res, (err?: unknown) => next(err ? toOpenAIError(err) : undefined)));
  app.useGlobalFilters(new OpenAIExceptionFilter());
}

/**
 * SIGTERM/SIGINT: close every app (each stops accepting, drains, flushes its ledger), then run the
 * extra cleanup (e.g. stopping the embedded database), then exit. A second signal exits at once.
 */
export function installGracefulShutdown(apps: INestApplication[], cleanup: () => Promise<void> = async () => undefined): void {
  const logger = new Logger('Shutdown');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    logger.log(`${signal}: draining`);
    try {
      for (const app of apps) await app.close();
      await cleanup();
      process.exit(0);
    } catch (e) {
      logger.error(`shutdown failed: ${(e as Error).message}`);
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
