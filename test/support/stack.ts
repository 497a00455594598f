import type { INestApplication } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { AppConfig } from '@gw/config';
import { LedgerWriter } from '@gw/metering';
import type { AppEgressOptions } from '@gw/providers';
import { startEmbeddedPostgres } from '@gw/db';
import { createAdminApp } from '../../apps/admin/src/main';
import { createGatewayApp } from '../../apps/gateway/src/main';
import { copyPgliteTemplate, createTestDatabase } from './test-database';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface Stack {
  gatewayUrl: string;
  adminUrl: string;
  /** `http://127.0.0.1:P/v1`, for SDKs. */
  baseURL: string;
  dbUrl: string;
  gateway: INestApplication;
  admin: INestApplication;
  /** Admin API call with the root token; returns status and parsed body. */
  api<T = any>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T; headers: Headers }>;
  /** Raw SQL against the stack's database. */
  sql<T = any>(text: string, params?: unknown[]): Promise<T[]>;
  /** Writes out queued ledger rows now. */
  flushLedger(): Promise<void>;
  /** The configuration both apps were built with (replicas reuse it). */
  config: Partial<AppConfig>;
  /** The app options both apps were built with (e.g. an egress resolver standing in for DNS; replicas reuse them). */
  options: AppEgressOptions;
  close(): Promise<void>;
}

/** Replicas started with `startGatewayReplica`, closed with their stack. */
const replicasOf = new WeakMap<Stack, GatewayReplica[]>();

/**
 * A whole gateway + admin on loopback with a database of its own: a fresh PGlite directory, or a
 * fresh database on the server in TEST_DATABASE_URL (dropped afterwards), or `overrides.databaseUrl`; the first
 * two start migrated when the run has a template (test/support/template.global-setup.ts).
 */
export async function startStack(overrides: Partial<AppConfig> = {}, options: AppEgressOptions = {}): Promise<Stack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-stack-'));
  // A database the caller runs itself (e.g. PGlite in its own process) is used as it is, and left alone.
  const external = overrides.databaseUrl;
  // Copies of the run's migrated template (template.global-setup.ts): a fresh PGlite directory costs an initdb
  // (seconds), a fresh database the migrations; the apps' migration run then finds nothing to do.
  const own = external ? undefined : await createTestDatabase('gw_test', { migrated: true });
  if (!external && !own) copyPgliteTemplate(dataDir);
  const dbUrl = external ?? own?.url ?? (await startEmbeddedPostgres(dataDir)).url;
  const dropDb = own?.drop;
  const cfg: Partial<AppConfig> = {
    host: '127.0.0.1',
    dataDir,
    databaseUrl: dbUrl,
    adminToken: TEST_ADMIN_TOKEN,
    masterKey: randomBytes(32).toString('base64'),
    logLevel: 'error',
    cacheRefreshMs: 100,
    ledgerFlushMs: 50,
    // close() drains in-flight requests first: a test that leaves one hanging should not cost 30 s.
    shutdownGraceMs: 2_000,
    openaiApiKey: undefined,
    openrouterApiKey: undefined,
    ollamaBaseUrl: undefined,
    redisUrl: process.env.TEST_REDIS_URL || undefined,
    // Failed-authentication blocks in a shared Redis are per address: keep each stack's (and its replicas') apart.
    authRedisNamespace: `test-${randomBytes(6).toString('hex')}`,
    ...overrides,
  };
  const gateway = await createGatewayApp(cfg, options);
  await gateway.listen(0, '127.0.0.1');
  const admin = await createAdminApp(cfg, options);
  await admin.listen(0, '127.0.0.1');
  const gatewayUrl = await gateway.getUrl();
  const adminUrl = await admin.getUrl();
  const pg = new Client({ connectionString: dbUrl });
  await pg.connect();

  const stack: Stack = {
    gatewayUrl: gatewayUrl.replace('[::1]', '127.0.0.1'),
    adminUrl: adminUrl.replace('[::1]', '127.0.0.1'),
    baseURL: `${gatewayUrl.replace('[::1]', '127.0.0.1')}/v1`,
    dbUrl,
    gateway,
    admin,
    async api(method, path, body, token = TEST_ADMIN_TOKEN) {
      const res = await fetch(`${stack.adminUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: any = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        /* CSV and other text stay as text */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async sql(text, params) {
      return (await pg.query(text, params as any[])).rows;
    },
    async flushLedger() {
      // Every replica's journal too: a call another replica served is written by that replica's writer.
      for (const r of replicasOf.get(stack) ?? []) await r.app.get(LedgerWriter).drain();
      await gateway.get(LedgerWriter).drain();
    },
    config: cfg,
    options,
    async close() {
      for (const r of replicasOf.get(stack) ?? []) await r.close().catch(() => undefined);
      await pg.end().catch(() => undefined);
      await gateway.close();
      await admin.close();
      if (dropDb) await dropDb();
      else if (!external) await (await startEmbeddedPostgres(dataDir)).stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return stack;
}

export interface GatewayReplica {
  app: INestApplication;
  gatewayUrl: string;
  /** `http://127.0.0.1:P/v1`, for SDKs. */
  baseURL: string;
  close(): Promise<void>;
}

/**
 * One more gateway process on the stack's database (and on its Redis, when TEST_REDIS_URL is set), as a
 * second replica behind a load balancer would be. `overrides` can, e.g., drop Redis (`redisUrl: undefined`).
 */
export async function startGatewayReplica(stack: Stack, overrides: Partial<AppConfig> = {}): Promise<GatewayReplica> {
  const app = await createGatewayApp({ ...stack.config, ...overrides }, stack.options);
  await app.listen(0, '127.0.0.1');
  const gatewayUrl = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  let closed = false;
  const replica: GatewayReplica = {
    app,
    gatewayUrl,
    baseURL: `${gatewayUrl}/v1`,
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
  replicasOf.set(stack, [...(replicasOf.get(stack) ?? []), replica]);
  return replica;
}

/** Creates a tenant with one key, a provider pointing at `baseUrl`, and a route per pattern. */
export async function seedTenant(
  stack: Stack,
  opts: {
    provider: { kind: 'openai' | 'openrouter' | 'ollama'; baseUrl: string; credential?: string; name?: string; settings?: object };
    patterns?: string[];
    tenant?: string;
    key?: object;
  },
): Promise<{ tenantId: string; keyId: string; secret: string; providerId: string }> {
  const tenant = await stack.api('POST', '/admin/tenants', { name: opts.tenant ?? `t-${randomBytes(3).toString('hex')}` });
  if (tenant.status !== 201) throw new Error(`tenant: ${tenant.status} ${JSON.stringify(tenant.body)}`);
  const key = await stack.api('POST', `/admin/tenants/${tenant.body.id}/keys`, { name: 'k', ...(opts.key ?? {}) });
  if (key.status !== 201) throw new Error(`key: ${key.status} ${JSON.stringify(key.body)}`);
  const existing = (await stack.api('GET', '/admin/providers')).body.find((p: any) => p.name === (opts.provider.name ?? opts.provider.kind));
  const provider = existing
    ? { body: existing }
    : await stack.api('POST', '/admin/providers', { name: opts.provider.name ?? opts.provider.kind, ...opts.provider });
  if (!provider.body.id) throw new Error(`provider: ${JSON.stringify(provider.body)}`);
  for (const pattern of opts.patterns ?? []) {
    const r = await stack.api('POST', '/admin/routes', { modelPattern: pattern, targets: [{ providerId: provider.body.id }] });
    if (r.status !== 201 && r.status !== 409) throw new Error(`route: ${r.status} ${JSON.stringify(r.body)}`);
  }
  return { tenantId: tenant.body.id, keyId: key.body.id, secret: key.body.secret, providerId: provider.body.id };
}

type Truthy<T> = Exclude<T, false | 0 | 0n | '' | null | undefined>;

/**
 * Polls until `fn` returns a truthy value and returns it. On timeout it throws, naming what it waited for
 * (`label`, else the function's source) and the last value seen: a wait that never came true is a failure,
 * never a falsy value for the caller to forget to check. An exception from `fn` fails at once.
 */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 5000, stepMs = 50, label?: string): Promise<Truthy<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const last = await fn();
    if (last) return last as Truthy<T>;
    if (Date.now() > end) {
      const what = label ?? fn.toString().replace(/\s+/g, ' ').slice(0, 200);
      let seen: string;
      try {
        seen = JSON.stringify(last) ?? String(last);
      } catch {
        seen = String(last);
      }
      throw new Error(`eventually: timed out after ${timeoutMs} ms waiting for ${what} (last value: ${seen.slice(0, 200)})`);
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
