import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Client } from 'pg';
import { parse } from 'yaml';
import { ConfigError, parseConfig } from '@gw/config';
import { MIGRATIONS, migrate, pendingMigrations, startEmbeddedPostgres, waitForMigrations } from '@gw/db';
import { createTestDatabase } from '@gw/testing';

/**
 * The deployment files, checked without a Docker engine: docker-compose.yml against the compose-spec
 * rules that matter here (services build or pull, depends_on conditions point at services that can
 * satisfy them, declared volumes, mounted files exist, the apps' environment passes the app's own config
 * validation, Prometheus and Grafana wiring), the Dockerfile's shape, Grafana dashboards and provisioning,
 * and the one-shot migration entry point against a fresh database.
 */
const ROOT = join(__dirname, '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

interface Service {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  volumes?: string[];
  ports?: string[];
  restart?: string;
  healthcheck?: { test?: string[] | string; interval?: string; timeout?: string; start_period?: string; retries?: number; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  configs?: Record<string, unknown>;
  [k: string]: unknown;
}

/** Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}` with the defaults applied (no .env). */
function interpolate(v: string): string {
  return v.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::?-([^}]*))?\}/g, (_, _name: string, def?: string) => def ?? '');
}

jest.setTimeout(60_000);

const ROOT_DIR = join(__dirname, '..');

describe('deployment files', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
  const services = compose.services;
  /** Where the `secrets` service's token file appears in a service that mounts its volume. */
  const secretsFileOf = (name: string) => {
    const mount = (services[name].volumes ?? []).find((v) => v.startsWith('gateway-secrets:'));
    return mount ? `${mount.split(':')[1]}/metrics.token` : undefined;
  };
  /** A token file like the one `secrets` makes, for checking the apps' config offline. */
  const generatedToken = join(mkdtempSync(join(tmpdir(), 'gw-token-')), 'metrics.token');
  writeFileSync(generatedToken, 'generated-token-0123456789abcdefABCDEF\n');

  describe('docker-compose.yml', () => {
    it('passes dclint: the compose-spec JSON schema plus its error-level rules (no Docker engine needed)', () => {
      const r = spawnSync(
        process.execPath,
        [join(ROOT_DIR, 'node_modules', 'dclint', 'bin', 'dclint.cjs'), '-f', 'json', join(ROOT_DIR, 'docker-compose.yml')],
        { encoding: 'utf8' },
      );
      if (r.status !== 0) console.error(r.stdout, r.stderr);
      expect(r.status).toBe(0);
      // The linter really ran on the file (an empty run would also exit 0).
      const report = JSON.parse(r.stdout || '[]') as { filePath: string; errorCount: number }[];
      expect(report.some((f) => f.filePath.endsWith('docker-compose.yml'))).toBe(true);
      expect(report.reduce((n, f) => n + f.errorCount, 0)).toBe(0);
    });

    it('has the whole stack, each service built here or pulled by a pinned tag', () => {
      expect(Object.keys(services).sort()).toEqual(['admin', 'gateway', 'grafana', 'migrate', 'postgres', 'prometheus', 'redis', 'secrets']);
      for (const key of Object.keys(compose))
        expect(['services', 'volumes', 'networks', 'configs', 'secrets', 'name'].includes(key) || key.startsWith('x-')).toBe(true);
      for (const [name, s] of Object.entries(services)) {
        expect(`${name}: ${Boolean(s.image || s.build)}`).toBe(`${name}: true`);
        if (!s.build) expect(s.image).toMatch(/^[\w./-]+:[\w.-]+$/);
        if (typeof s.build === 'string') expect(existsSync(join(ROOT, s.build, 'Dockerfile'))).toBe(true);
      }
    });

    it('every depends_on names an existing service with a condition it can meet, and there is no cycle', () => {
      const conditions = ['service_started', 'service_healthy', 'service_completed_successfully'];
      for (const [name, s] of Object.entries(services)) {
        for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
          expect(`${name} → ${dep}: ${dep in services}`).toBe(`${name} → ${dep}: true`);
          expect(conditions).toContain(condition);
          if (condition === 'service_healthy') {
            const hc = services[dep].healthcheck;
            expect(`${dep} has a health check: ${Boolean(hc?.test && !hc.disable)}`).toBe(`${dep} has a health check: true`);
          }
          if (condition === 'service_completed_successfully') expect(services[dep].restart).toBe('no');
        }
      }
      const visiting = new Set<string>();
      const done = new Set<string>();
      const visit = (n: string) => {
        if (done.has(n)) return;
        if (visiting.has(n)) throw new Error(`depends_on cycle through ${n}`);
        visiting.add(n);
        for (const d of Object.keys(services[n].depends_on ?? {})) visit(d);
        visiting.delete(n);
        done.add(n);
      };
      for (const n of Object.keys(services)) visit(n);
    });

    it('health checks are well-formed; the apps check readiness on their own port', () => {
      const duration = /^\d+(ms|s|m|h)$/;
      for (const [name, s] of Object.entries(services)) {
        const hc = s.healthcheck;
        if (!hc || hc.disable) continue;
        expect(Array.isArray(hc.test)).toBe(true);
        expect(['CMD', 'CMD-SHELL']).toContain((hc.test as string[])[0]);
        for (const d of [hc.interval, hc.timeout, hc.start_period]) if (d !== undefined) expect(`${name}: ${d} ${duration.test(d)}`).toBe(`${name}: ${d} true`);
      }
      expect(JSON.stringify(services.gateway.healthcheck!.test)).toContain('127.0.0.1:8080/readyz');
      expect(JSON.stringify(services.admin.healthcheck!.test)).toContain('127.0.0.1:8081/readyz');
      for (const name of ['postgres', 'redis', 'gateway', 'admin', 'prometheus', 'grafana']) expect(services[name].healthcheck?.test).toBeDefined();
    });

    it('migrations run once, before the apps, which then skip them', () => {
      expect(services.migrate.command).toEqual(['node', '--enable-source-maps', 'dist/libs/db/src/migrate.main.js']);
      expect(services.migrate.depends_on?.postgres?.condition).toBe('service_healthy');
      for (const app of ['gateway', 'admin']) {
        expect(services[app].depends_on?.migrate?.condition).toBe('service_completed_successfully');
        expect(services[app].environment?.DB_MIGRATE).toBe('false');
      }
    });

    it("the metrics token is this installation's own: made once by `secrets`, read by the apps and Prometheus, no shared default", () => {
      const text = read('docker-compose.yml');
      expect(text).not.toMatch(/change-me-metrics-token/);
      expect(compose.configs?.metrics_token).toBeUndefined();
      const gen = services.secrets;
      expect(gen.restart).toBe('no');
      expect((gen.volumes ?? []).some((v) => v === 'gateway-secrets:/run/gateway-secrets')).toBe(true);
      for (const app of ['gateway', 'admin']) {
        expect(services[app].environment?.METRICS_TOKEN).toBeUndefined();
        expect(services[app].environment?.METRICS_TOKEN_FILE).toBe('/run/gateway-secrets/metrics.token');
        expect(services[app].depends_on?.secrets?.condition).toBe('service_completed_successfully');
      }
      expect(services.prometheus.volumes).toContain('gateway-secrets:/etc/prometheus/secrets:ro');
      expect(services.prometheus.depends_on?.secrets?.condition).toBe('service_completed_successfully');
      // The generator's script, run here with sh: a fresh volume gets a long random token, a second run keeps
      // it, and METRICS_TOKEN from .env replaces it.
      const script = (gen.command as string[])[2];
      const dir = mkdtempSync(join(tmpdir(), 'gw-secrets-'));
      const run = (env: Record<string, string> = {}) => {
        const r = spawnSync('sh', ['-c', script.replace(/\$\$/g, '$').replaceAll('/run/gateway-secrets', dir)], {
          env: { PATH: process.env.PATH ?? '', ...env },
          encoding: 'utf8',
        });
        expect(r.status).toBe(0);
        return readFileSync(join(dir, 'metrics.token'), 'utf8');
      };
      const first = run();
      expect(first).toMatch(/^[A-Za-z0-9]{40,}$/);
      expect(run()).toBe(first);
      expect(run({ METRICS_TOKEN: 'from-dot-env-0123456789' })).toBe('from-dot-env-0123456789');
    });

    it("each app command runs a file the build produces, with an environment the app's own config accepts", () => {
      for (const name of ['migrate', 'gateway', 'admin']) {
        const cmd = services[name].command as string[];
        const js = cmd.find((c) => c.startsWith('dist/'))!;
        expect(existsSync(join(ROOT, js.replace(/^dist\//, '').replace(/\.js$/, '.ts')))).toBe(true);
        const env = Object.fromEntries(Object.entries(services[name].environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
        if (env.METRICS_TOKEN_FILE) {
          // The file the `secrets` service writes into the volume this app mounts; a token of that shape here.
          expect(secretsFileOf(name)).toBe(env.METRICS_TOKEN_FILE);
          env.METRICS_TOKEN_FILE = generatedToken;
        }
        let problem: unknown;
        try {
          parseConfig(env);
        } catch (e) {
          problem = e;
        }
        expect(problem instanceof ConfigError ? problem.message : problem).toBeUndefined();
        const cfg = parseConfig(env);
        expect(cfg.databaseUrl).toMatch(/@postgres:5432\//);
        expect(cfg.redisUrl).toBe('redis://redis:6379');
        if (name !== 'migrate') expect(cfg.metricsToken).toBe('generated-token-0123456789abcdefABCDEF');
        if (name === 'gateway') expect(cfg.gatewayPort).toBe(8080);
      }
      expect(services.gateway.ports).toContain('0.0.0.0:8080:8080');
      expect(services.admin.ports).toContain('0.0.0.0:8081:8081');
    });

    it('interpolations are well-formed and environment values are strings', () => {
      const text = read('docker-compose.yml');
      for (const m of text.matchAll(/\$\{[^}]*\}/g)) expect(m[0]).toMatch(/^\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}$/);
      for (const [name, s] of Object.entries(services)) {
        for (const [k, v] of Object.entries(s.environment ?? {})) expect(`${name}.${k}: ${typeof v}`).toBe(`${name}.${k}: string`);
      }
    });

    it('named volumes are declared, and every bind-mounted file or folder exists', () => {
      const declared = Object.keys(compose.volumes ?? {});
      const used = new Set<string>();
      for (const [name, s] of Object.entries(services)) {
        for (const v of s.volumes ?? []) {
          const [source, target] = v.split(':');
          expect(posix.isAbsolute(target)).toBe(true);
          if (source.startsWith('.') || source.startsWith('/')) {
            expect(`${name}: ${source} exists: ${existsSync(join(ROOT, source))}`).toBe(`${name}: ${source} exists: true`);
          } else {
            expect(`${name}: volume ${source} declared: ${declared.includes(source)}`).toBe(`${name}: volume ${source} declared: true`);
            used.add(source);
          }
        }
      }
      expect([...used].sort()).toEqual(declared.sort());
      expect(services.postgres.volumes?.some((v) => v.endsWith(':/var/lib/postgresql/data'))).toBe(true);
      expect(services.grafana.volumes?.some((v) => v.endsWith(':/var/lib/grafana'))).toBe(true);
      // the gateway's usage journal outlives its container
      expect(services.gateway.volumes?.some((v) => v.endsWith(':/data'))).toBe(true);
    });

    it('Prometheus gets its config and rule files where the config looks, and scrapes services that exist', () => {
      const mounts = new Map((services.prometheus.volumes ?? []).map((v) => [v.split(':')[1], v.split(':')[0]]));
      const cfgPath = '/etc/prometheus/prometheus.yml';
      expect(mounts.get(cfgPath)).toBe('./deploy/prometheus/prometheus.yml');
      expect(services.prometheus.command).toContain(`--config.file=${cfgPath}`);
      const cfg = parse(read('deploy/prometheus/prometheus.yml')) as {
        rule_files: string[];
        scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
      };
      for (const f of cfg.rule_files) {
        const inContainer = posix.join('/etc/prometheus', f);
        expect(mounts.get(inContainer)).toBe(`./deploy/prometheus/${f}`);
      }
      const ports: Record<string, number> = { gateway: 8080, admin: 8081, prometheus: 9090 };
      for (const job of cfg.scrape_configs) {
        for (const t of job.static_configs.flatMap((s) => s.targets)) {
          const [host, port] = t.split(':');
          if (host === 'localhost') continue;
          expect(host in services).toBe(true);
          expect(Number(port)).toBe(ports[host]);
        }
      }
      expect(cfg.scrape_configs.map((j) => j.job_name)).toEqual(expect.arrayContaining(['gateway', 'admin']));
    });

    it('Grafana gets its provisioning and dashboards, and the datasource points at the prometheus service', () => {
      const mounts = new Map((services.grafana.volumes ?? []).map((v) => [v.split(':')[1], v.split(':')[0]]));
      expect(mounts.get('/etc/grafana/provisioning')).toBe('./deploy/grafana/provisioning');
      const providers = parse(read('deploy/grafana/provisioning/dashboards/llm-gateway.yml')) as { providers: { type: string; options: { path: string } }[] };
      for (const p of providers.providers) expect(mounts.get(p.options.path)).toBe('./deploy/grafana/dashboards');
      const ds = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string; type: string; url: string }[] };
      expect(ds.datasources).toHaveLength(1);
      expect(ds.datasources[0].type).toBe('prometheus');
      expect(new URL(ds.datasources[0].url).host).toBe('prometheus:9090');
      const home = services.grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH as string;
      expect(existsSync(join(ROOT, mounts.get(posix.dirname(home))!, posix.basename(home)))).toBe(true);
    });
  });

  describe('Grafana dashboards', () => {
    const dir = join(ROOT, 'deploy', 'grafana', 'dashboards');
    const uid = (parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string }[] }).datasources[0].uid;
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

    it('are three: overview, per tenant (with a tenant variable), provider health', () => {
      expect(files.sort()).toEqual(['overview.json', 'provider-health.json', 'tenant.json']);
      const tenant = JSON.parse(readFileSync(join(dir, 'tenant.json'), 'utf8'));
      expect(tenant.templating.list.map((v: { name: string }) => v.name)).toEqual(['tenant']);
    });

    it('have unique uids, unique panel ids, panels inside the 24-column grid, and only the provisioned datasource', () => {
      const uids = new Set<string>();
      for (const f of files) {
        const d = JSON.parse(readFileSync(join(dir, f), 'utf8'));
        expect(uids.has(d.uid)).toBe(false);
        uids.add(d.uid);
        const ids = new Set<number>();
        for (const p of d.panels) {
          expect(ids.has(p.id)).toBe(false);
          ids.add(p.id);
          expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
          if (p.type === 'row') continue;
          expect(`${f} › ${p.title}: ${p.datasource?.uid}`).toBe(`${f} › ${p.title}: ${uid}`);
          expect(p.targets.length).toBeGreaterThan(0);
          for (const t of p.targets) expect(t.datasource.uid).toBe(uid);
          expect(new Set(p.targets.map((t: { refId: string }) => t.refId)).size).toBe(p.targets.length);
        }
      }
    });
  });

  describe('Dockerfile', () => {
    const text = read('Dockerfile');
    const stages = text.split(/^FROM /m).slice(1);

    it('is multi-stage: builds with swc, prunes dev dependencies, runs dist as a non-root user', () => {
      expect(stages.length).toBeGreaterThanOrEqual(2);
      const [build, runtime] = [stages[0], stages[stages.length - 1]];
      expect(build).toContain('node scripts/build.mjs');
      expect(build).toContain('npm prune --omit=dev');
      const copies = [...runtime.matchAll(/^COPY --from=\w+ (\S+)/gm)].map((m) => m[1]);
      expect(copies.sort()).toEqual(['/app/dist', '/app/node_modules', '/app/package.json']);
      expect(runtime).not.toMatch(/^COPY (?!--from)/m);
      const user = /^USER (\S+)/m.exec(runtime)?.[1];
      expect(user).toBeDefined();
      expect(['root', '0']).not.toContain(user);
      expect(runtime).toMatch(/^CMD \[.*"dist\/apps\/gateway\/src\/main\.js"\]/m);
    });

    it('copies sources that exist and that .dockerignore lets through', () => {
      const ignore = read('.dockerignore')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'));
      for (const m of stages[0].matchAll(/^COPY (?!--from)(.+) (\S+)$/gm)) {
        for (const src of m[1].split(' ')) {
          expect(`${src} exists: ${existsSync(join(ROOT, src))}`).toBe(`${src} exists: true`);
          const top = src.split('/')[0];
          const ignored = ignore.includes(top) && !ignore.includes(`!${src}`);
          expect(`${src} ignored: ${ignored}`).toBe(`${src} ignored: false`);
        }
      }
    });

    it('needs no dev dependency at run time: every package apps/ and libs/ import is a production dependency', () => {
      const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
      const missing = new Set<string>();
      const walk = (d: string) => {
        for (const f of readdirSync(d)) {
          const p = join(d, f);
          if (statSync(p).isDirectory()) walk(p);
          else if (f.endsWith('.ts') && !f.endsWith('.spec.ts')) {
            for (const m of readFileSync(p, 'utf8').matchAll(/(?:from\s+|require\(|import\()\s*'([^'.][^']*)'/g)) {
              const spec = m[1];
              if (spec.startsWith('@gw/') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
              const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
              if (!(name in pkg.dependencies)) missing.add(`${name} (${p.slice(ROOT.length + 1)})`);
            }
          }
        }
      };
      walk(join(ROOT, 'apps'));
      walk(join(ROOT, 'libs'));
      expect([...missing]).toEqual([]);
    });
  });

  describe('migrate.main (the compose `migrate` service, the Kubernetes migrate Job and its --wait init containers)', () => {
    it('applies every migration to a fresh database once; a second run applies none', async () => {
      let url: string;
      let cleanup: () => Promise<void>;
      const own = await createTestDatabase('gw_test_migrate');
      if (own) {
        url = own.url;
        cleanup = own.drop;
      } else {
        const dir = mkdtempSync(join(tmpdir(), 'gw-migrate-'));
        const pg = await startEmbeddedPostgres(dir);
        url = pg.url;
        cleanup = async () => {
          await pg.stop();
          rmSync(dir, { recursive: true, force: true });
        };
      }
      const saved = process.env.DATABASE_URL;
      process.env.DATABASE_URL = url;
      const quiet = { log: () => undefined } as unknown as Parameters<typeof migrate>[0];
      try {
        // The Kubernetes apps' init container (`--wait`) holds a pod while migrations are pending, without applying any.
        expect(await pendingMigrations()).toHaveLength(MIGRATIONS.length);
        const said: string[] = [];
        const log = { log: (m: string) => said.push(m) } as unknown as Parameters<typeof migrate>[0];
        await expect(waitForMigrations(log, { checks: 1 })).rejects.toThrow(`waiting for ${MIGRATIONS.length} migration(s)`);
        expect(said).toEqual([expect.stringContaining('Initial1764028800000')]);
        expect(await pendingMigrations()).toHaveLength(MIGRATIONS.length);
        expect(await migrate(quiet)).toHaveLength(MIGRATIONS.length);
        expect(await pendingMigrations()).toEqual([]);
        await waitForMigrations(quiet, { checks: 1 });
        const c = new Client({ connectionString: url });
        await c.connect();
        const tables = (await c.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)).rows.map((r) => r.table_name);
        await c.end();
        expect(tables).toEqual(expect.arrayContaining(['tenants', 'api_keys', 'usage_records', 'migrations']));
        expect(await migrate(quiet)).toEqual([]);
      } finally {
        if (saved === undefined) delete process.env.DATABASE_URL;
        else process.env.DATABASE_URL = saved;
        await cleanup();
      }
    });
  });
});
