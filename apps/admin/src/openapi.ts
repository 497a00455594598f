import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { AdminModule } from './admin.module';

export function buildOpenApi(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('LLM Gateway admin API')
    .setDescription(
      'Tenants, keys, admin tokens, providers, routes, prices, usage and the audit log. Authenticate with `Authorization: Bearer <token>`: ' +
        'the root ADMIN_TOKEN, or an admin token (`gwa-…`) with role root, admin or viewer. A tenant admin or viewer sees only its own tenant; ' +
        "another tenant's ids answer 404. See docs/access-control.md.",
    )
    .setVersion('1')
    .addBearerAuth()
    .build();
  return SwaggerModule.createDocument(app, config);
}

/**
 * The document with no database (`npm run openapi`): Nest's preview mode builds the module graph and
 * reads the decorators, but instantiates no provider, so TypeORM never connects.
 */
export async function generateOpenApi(): Promise<OpenAPIObject> {
  const app = await NestFactory.create(AdminModule.forRoot(), { preview: true, logger: false });
  try {
    return buildOpenApi(app);
  } finally {
    await app.close();
  }
}

/** Keys sorted at every level, two-space indent, final newline: the committed docs/openapi.json diffs cleanly. */
export function openApiJson(doc: OpenAPIObject): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(doc), null, 2) + '\n';
}
