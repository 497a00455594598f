import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { PATH_METADATA } from '@nestjs/common/constants';
import { parse, parseAllDocuments } from 'yaml';
import { AppConfig, parseConfig } from '@gw/config';
import { validateEgressConfig } from '@gw/providers';
import { AdminHealthController } from '../../apps/admin/src/health/health.controller';
import { HealthController } from '../../apps/gateway/src/health/health.controller';
import { K8sObject, schemaProblems, selects, unknownFields } from './manifests.checks';

/**
 * The Kubernetes manifests, checked offline: each overlay rendered by `kubectl kustomize`, every object against
 * the Kubernetes schemas (kubernetes-models) with unknown fields refused, then what the apps need of them:
 * the SIGTERM drain fits in terminationGracePeriodSeconds, probes hit routes the apps serve, every variable is
 * one the apps read, every Secret and key referenced exists, selectors and the HPA point at the Deployments.
 */
const ROOT = join(__dirname, '..', '..');
/** The two overlays, and the scaled one with each optional component added as the docs say (`components:`). */
const OVERLAYS = ['single', 'scaled', 'scaled-in-flight', 'scaled-shared-journal'] as const;
const COMPONENTS: Partial<Record<Overlay, string>> = { 'scaled-in-flight': 'in-flight-autoscaling', 'scaled-shared-journal': 'shared-journal' };
type Overlay = (typeof OVERLAYS)[number];

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0 ? 'kubectl' : undefined;
if (!kubectl) console.warn('deploy/k8s: kubectl not found on PATH, so the overlays cannot be rendered: their checks are SKIPPED');

/** Variables the apps read outside parseConfig, with the file that reads each. */
const READ_ELSEWHERE: Record<string, string> = { DB_MIGRATE: 'libs/db/src/migration.runner.ts' };
/** What the Secret holds; a referenced key not listed here needs a stand-in below. */
const SECRET_STANDINS: Record<string, string> = {
  DATABASE_URL: 'postgres://gateway:secret@postgres:5432/gateway',
  REDIS_URL: 'redis://redis:6379',
  MASTER_KEY: '0'.repeat(64),
  ADMIN_TOKEN: 'admin-token-0123456789abcdef',
  METRICS_TOKEN: 'metrics-token-0123456789abcdef',
};
/** Never in a ConfigMap (readable by anyone who can read the namespace's configuration). */
const SECRET_NAMES = new Set([...Object.keys(SECRET_STANDINS), 'OPENAI_API_KEY', 'OPENROUTER_API_KEY']);
/** After SHUTDOWN_GRACE_MS: aborting what is left (2 s for its error events and rows), the last flush, closing. */
const AFTER_GRACE_S = 10;
/** PostgreSQL's default max_connections (100) less its superuser_reserved_connections (3). */
const PG_CONNECTIONS = 97;

/** Every variable parseConfig reads: it is run on an environment that records each name asked for. */
function configNames(): Set<string> {
  const seen = new Set<string>();
  parseConfig(new Proxy({}, { get: (_t, k) => (typeof k === 'string' && seen.add(k), undefined) }));
  return seen;
}
const CONFIG_NAMES = configNames();
const knownVariable = (name: string) =>
  CONFIG_NAMES.has(name) || (name in READ_ELSEWHERE && readFileSync(join(ROOT, READ_ELSEWHERE[name]), 'utf8').includes(name));

/** The routes a health controller serves, from Nest's own metadata. */
function routesOf(controller: abstract new (...args: never[]) => unknown): string[] {
  const base = String(Reflect.getMetadata(PATH_METADATA, controller) ?? '');
  const proto = controller.prototype as Record<string, unknown>;
  return Object.getOwnPropertyNames(proto)
    .map((m) => Reflect.getMetadata(PATH_METADATA, proto[m] as object) as string | undefined)
    .filter((p) => p !== undefined)
    .map((p) => posix.join('/', base, p));
}
/** Each entry point the manifests may run: the source it is built from, and what serves its probes. */
const ENTRIES: Record<string, { source: string; routes?: string[]; port?: (c: AppConfig) => number }> = {
  'dist/apps/gateway/src/main.js': { source: 'apps/gateway/src/main.ts', routes: routesOf(HealthController), port: (c) => c.gatewayPort },
  'dist/apps/admin/src/main.js': { source: 'apps/admin/src/main.ts', routes: routesOf(AdminHealthController), port: (c) => c.adminPort },
  'dist/libs/db/src/migrate.main.js': { source: 'libs/db/src/migrate.main.ts' },
};
/** The image's DATA_DIR (Dockerfile `ENV`): where the journal goes unless JOURNAL_DIR says otherwise. */
const IMAGE_DATA_DIR = /DATA_DIR=(\S+)/.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))![1];

/** deploy/k8s copied with each overlay's secrets.env made from its example (a user's own is never read). */
function renderTree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gw-k8s-'));
  cpSync(__dirname, dir, { recursive: true, filter: (src) => basename(src) !== 'secrets.env' && !src.endsWith('.ts') });
  for (const o of readdirSync(join(dir, 'overlays'))) {
    const example = join(dir, 'overlays', o, 'secrets.env.example');
    if (existsSync(example)) copyFileSync(example, join(dir, 'overlays', o, 'secrets.env'));
  }
  // Each optional component added to a copy of the scaled overlay, as an operator would add it.
  for (const [overlay, component] of Object.entries(COMPONENTS)) {
    const copy = join(dir, 'overlays', overlay);
    cpSync(join(dir, 'overlays', 'scaled'), copy, { recursive: true });
    writeFileSync(
      join(copy, 'kustomization.yaml'),
      `${readFileSync(join(copy, 'kustomization.yaml'), 'utf8')}\ncomponents:\n  - ../../components/${component}\n`,
    );
  }
  return dir;
}
function render(dir: string, overlay: Overlay): K8sObject[] {
  const r = spawnSync(kubectl!, ['kustomize', join(dir, 'overlays', overlay)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kubectl kustomize overlays/${overlay} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => !!o);
}

const ofKind = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind);
const named = (objs: K8sObject[], kind: string, name: string) => objs.find((o) => o.kind === kind && o.metadata.name === name);
/** Deployments and Jobs with their pod spec. */
const workloads = (objs: K8sObject[]) => objs.filter((o) => o.kind === 'Deployment' || o.kind === 'Job').map((o) => ({ obj: o, pod: o.spec.template }));
const entryOf = (c: any) => ENTRIES[(c.command ?? []).find((a: string) => a.startsWith('dist/'))];

/** A container's environment as the kubelet would build it; secret values replaced by valid stand-ins. */
function envOf(objs: K8sObject[], c: any, where: string): { env: Record<string, string>; problems: string[]; secretRefs: Map<string, boolean> } {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  const secretRefs = new Map<string, boolean>();
  const source = (kind: 'ConfigMap' | 'Secret', name: string, optional: boolean) => {
    const o = named(objs, kind, name);
    if (!o && !optional) problems.push(`${where}: ${kind} ${name} does not exist`);
    if (!o) return undefined;
    const data: Record<string, string> = { ...(o.data ?? {}) };
    if (kind === 'Secret') for (const k of Object.keys(data)) data[k] = Buffer.from(data[k], 'base64').toString('utf8');
    return { ...data, ...(o.stringData ?? {}) } as Record<string, string>;
  };
  for (const from of c.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    const data = source(from.configMapRef ? 'ConfigMap' : 'Secret', ref.name, !!ref.optional) ?? {};
    for (const [k, v] of Object.entries(data)) env[(from.prefix ?? '') + k] = from.secretRef ? (SECRET_STANDINS[k] ?? v) : v;
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
    if (!ref) continue;
    const isSecret = !!e.valueFrom.secretKeyRef;
    if (isSecret) secretRefs.set(e.name, !!ref.optional);
    const data = source(isSecret ? 'Secret' : 'ConfigMap', ref.name, !!ref.optional);
    if (data && !(ref.key in data) && !ref.optional) problems.push(`${where}: ${e.name} needs key ${ref.key}, which ${ref.name} does not have`);
    if (data && ref.key in data) env[e.name] = isSecret ? (SECRET_STANDINS[ref.key] ?? data[ref.key]) : data[ref.key];
    if (isSecret && !(ref.key in SECRET_STANDINS)) problems.push(`${where}: secret key ${ref.key} has no stand-in in this test (SECRET_STANDINS)`);
  }
  for (const name of Object.keys(env)) if (!knownVariable(name)) problems.push(`${where}: ${name} is not a variable the apps read (parseConfig)`);
  return { env, problems, secretRefs };
}

/** Every container of every workload, with its resolved environment and parsed configuration. */
function containers(objs: K8sObject[]) {
  return workloads(objs).flatMap(({ obj, pod }) =>
    [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((c: any) => {
      const init = (pod.spec.initContainers ?? []).includes(c);
      const where = `${obj.kind}/${obj.metadata.name}/${init ? 'init:' : ''}${c.name}`;
      const { env, problems, secretRefs } = envOf(objs, c, where);
      let cfg: AppConfig | undefined;
      try {
        cfg = parseConfig(env);
        validateEgressConfig(cfg);
      } catch (e) {
        problems.push(`${where}: ${(e as Error).message}`);
      }
      return { obj, pod, c, init, where, env, cfg, problems, secretRefs, entry: entryOf(c) };
    }),
  );
}

function envProblems(objs: K8sObject[]): string[] {
  const out = containers(objs).flatMap((x) => x.problems);
  for (const cm of ofKind(objs, 'ConfigMap'))
    for (const k of Object.keys(cm.data ?? {})) if (SECRET_NAMES.has(k)) out.push(`ConfigMap/${cm.metadata.name}: ${k} belongs in the Secret`);
  return out;
}

function preStopSeconds(c: any): number {
  const h = c.lifecycle?.preStop;
  if (h?.sleep) return Number(h.sleep.seconds);
  const cmd: string[] = h?.exec?.command ?? [];
  return cmd[0] === 'sleep' ? Number(cmd[1]) : 0;
}

/** The SIGTERM drain (preStop pause, SHUTDOWN_GRACE_MS, then abort and flush) fits before the SIGKILL. */
function shutdownProblems(objs: K8sObject[]): string[] {
  return containers(objs)
    .filter((x) => x.obj.kind === 'Deployment' && !x.init && x.cfg)
    .flatMap(({ pod, c, where, cfg }) => {
      const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
      const needed = preStopSeconds(c) + Math.ceil(cfg!.shutdownGraceMs / 1000) + AFTER_GRACE_S;
      return grace > cfg!.shutdownGraceMs / 1000 && grace >= needed
        ? []
        : [
            `${where}: terminationGracePeriodSeconds ${grace} < preStop ${preStopSeconds(c)} s + SHUTDOWN_GRACE_MS ${cfg!.shutdownGraceMs} ms + ${AFTER_GRACE_S} s`,
          ];
    });
}

/** Probes: liveness /healthz, readiness /readyz, both served by the app on the port it listens on. */
function probeProblems(objs: K8sObject[]): string[] {
  const out: string[] = [];
  for (const { c, where, cfg, entry, obj, init } of containers(objs)) {
    if (!entry) out.push(`${where}: runs ${JSON.stringify(c.command)}, not an entry point the build produces`);
    else if (!existsSync(join(ROOT, entry.source))) out.push(`${where}: ${entry.source} does not exist`);
    if (obj.kind !== 'Deployment' || init || !entry?.routes || !cfg) continue;
    // Each app waits for the migrate Job's schema before it starts (apps run with DB_MIGRATE=false).
    const inits: any[] = obj.spec.template.spec.initContainers ?? [];
    if (!inits.some((i) => i.image === c.image && i.command?.join(' ').endsWith('dist/libs/db/src/migrate.main.js --wait')))
      out.push(`${where}: no init container waiting for migrations (migrate.main.js --wait) on its image`);
    const expected = { livenessProbe: '/healthz', readinessProbe: '/readyz', startupProbe: '/healthz' } as const;
    for (const [probe, path] of Object.entries(expected)) {
      const p = c[probe]?.httpGet;
      if (!p) {
        if (probe !== 'startupProbe') out.push(`${where}: no ${probe}`);
        continue;
      }
      if (p.path !== path) out.push(`${where}: ${probe} on ${p.path}, expected ${path}`);
      if (!entry.routes.includes(p.path)) out.push(`${where}: ${probe} path ${p.path} is not a route of the app (${entry.routes.join(', ')})`);
      const port = typeof p.port === 'number' ? p.port : (c.ports ?? []).find((cp: any) => cp.name === p.port)?.containerPort;
      if (port !== entry.port!(cfg)) out.push(`${where}: ${probe} on port ${p.port}, the app listens on ${entry.port!(cfg)}`);
    }
  }
  return out;
}

/** Services, the PDB, NetworkPolicies and the HPA point at the workloads they are for, and only at those. */
function selectorProblems(objs: K8sObject[]): string[] {
  const out: string[] = [];
  const deployments = ofKind(objs, 'Deployment');
  const pods = workloads(objs).map(({ obj, pod }) => ({ name: obj.metadata.name, labels: pod.metadata?.labels ?? {}, pod }));
  const matching = (sel: any) => pods.filter((p) => selects(sel, p.labels));
  for (const d of deployments)
    if (!selects(d.spec.selector, d.spec.template.metadata.labels)) out.push(`Deployment/${d.metadata.name}: its selector does not select its own pods`);
  for (const pdb of ofKind(objs, 'PodDisruptionBudget')) {
    // A PDB is named after the Deployment it protects, and selects that one's pods only.
    const m = matching(pdb.spec.selector).map((p) => p.name);
    if (m.join() !== pdb.metadata.name || !named(objs, 'Deployment', m[0]))
      out.push(`PodDisruptionBudget/${pdb.metadata.name}: selects ${JSON.stringify(m)}, not Deployment ${pdb.metadata.name}`);
  }
  for (const svc of ofKind(objs, 'Service')) {
    const m = matching({ matchLabels: svc.spec.selector });
    if (m.length !== 1) out.push(`Service/${svc.metadata.name}: selects ${JSON.stringify(m.map((p) => p.name))}, not one workload`);
    for (const port of svc.spec.ports ?? [])
      for (const p of m)
        if (
          !(p.pod.spec.containers as any[]).some((c) => (c.ports ?? []).some((cp: any) => cp.name === port.targetPort || cp.containerPort === port.targetPort))
        )
          out.push(`Service/${svc.metadata.name}: targetPort ${port.targetPort} is no port of ${p.name}`);
  }
  for (const np of ofKind(objs, 'NetworkPolicy')) if (matching(np.spec.podSelector).length === 0) out.push(`NetworkPolicy/${np.metadata.name}: selects no pod`);
  for (const hpa of ofKind(objs, 'HorizontalPodAutoscaler')) {
    const t = hpa.spec.scaleTargetRef;
    if (t.apiVersion !== 'apps/v1' || t.kind !== 'Deployment' || !named(objs, 'Deployment', t.name))
      out.push(`HorizontalPodAutoscaler/${hpa.metadata.name}: targets ${t.apiVersion} ${t.kind} ${t.name}, not a Deployment here`);
    else if (named(objs, 'Deployment', t.name)!.spec.replicas !== undefined)
      out.push(`Deployment/${t.name}: sets replicas, which every apply would reset under its HorizontalPodAutoscaler`);
    if (!(hpa.spec.metrics ?? []).some((m: any) => m.type === 'Resource' && m.resource.name === 'cpu'))
      out.push(`HorizontalPodAutoscaler/${hpa.metadata.name}: no CPU metric`);
    if (hpa.spec.maxReplicas < (hpa.spec.minReplicas ?? 1)) out.push(`HorizontalPodAutoscaler/${hpa.metadata.name}: maxReplicas < minReplicas`);
  }
  return out;
}

/** Non-root, read-only root filesystem, no privilege; the only path an app writes (the journal) is a volume. */
function securityProblems(objs: K8sObject[]): string[] {
  const out: string[] = [];
  for (const { pod, c, where, cfg, entry } of containers(objs)) {
    const podSc = pod.spec.securityContext ?? {};
    const sc = c.securityContext ?? {};
    if (!(sc.runAsNonRoot ?? podSc.runAsNonRoot)) out.push(`${where}: may run as root`);
    if (sc.readOnlyRootFilesystem !== true) out.push(`${where}: root filesystem is writable`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`${where}: allows privilege escalation`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) out.push(`${where}: keeps Linux capabilities`);
    if ((sc.seccompProfile ?? podSc.seccompProfile)?.type !== 'RuntimeDefault') out.push(`${where}: no RuntimeDefault seccomp profile`);
    if (pod.spec.automountServiceAccountToken !== false) out.push(`${where}: mounts a service account token it never uses`);
    if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory || !c.resources?.limits?.memory)
      out.push(`${where}: no CPU and memory requests, or no memory limit`);
    if (!cfg) continue;
    if (!cfg.databaseUrl) out.push(`${where}: no DATABASE_URL (the embedded PGlite would write to the root filesystem)`);
    if (!cfg.masterKey && entry?.routes) out.push(`${where}: no MASTER_KEY (it would be generated into DATA_DIR)`);
    if (entry?.source === 'apps/gateway/src/main.ts') {
      const journal = cfg.journalDir ?? posix.join(literalEnv(c, 'DATA_DIR') ?? IMAGE_DATA_DIR, 'journal');
      const mount = (c.volumeMounts ?? []).find((m: any) => !m.readOnly && (journal === m.mountPath || journal.startsWith(m.mountPath + '/')));
      const volume = mount && (pod.spec.volumes ?? []).find((v: any) => v.name === mount.name);
      if (!volume || !(volume.emptyDir || volume.persistentVolumeClaim))
        out.push(`${where}: the usage journal (${journal}) is not on a writable volume that outlives the container`);
      // A claim shared by the replicas must be mountable by all of them at once.
      const claim = volume?.persistentVolumeClaim && named(objs, 'PersistentVolumeClaim', volume.persistentVolumeClaim.claimName);
      if (volume?.persistentVolumeClaim && !claim?.spec.accessModes?.includes('ReadWriteMany'))
        out.push(`${where}: the journal's claim ${volume.persistentVolumeClaim.claimName} does not exist or is not ReadWriteMany`);
    }
  }
  return out;
}
const literalEnv = (c: any, name: string): string | undefined => (c.env ?? []).find((e: any) => e.name === name)?.value;

/** Ingress to the gateway from anywhere, to the admin API never from the gateway; egress only where needed. */
function networkProblems(objs: K8sObject[]): string[] {
  const out: string[] = [];
  const policyFor = (component: string) =>
    ofKind(objs, 'NetworkPolicy').find((np) => np.spec.podSelector.matchLabels?.['app.kubernetes.io/component'] === component);
  const portsOf = (rules: any[]) => new Set(rules.flatMap((r) => (r.ports ?? []).map((p: any) => `${p.protocol ?? 'TCP'}/${p.port}`)));
  const podLabels = (component: string) =>
    workloads(objs).find(({ obj }) => obj.metadata.labels?.['app.kubernetes.io/component'] === component)?.pod.metadata.labels;
  const needs: Record<string, string[]> = {
    gateway: ['UDP/53', 'TCP/53', 'TCP/5432', 'TCP/6379', 'TCP/443'],
    admin: ['UDP/53', 'TCP/53', 'TCP/5432', 'TCP/6379'],
    migrate: ['UDP/53', 'TCP/53', 'TCP/5432'],
  };
  for (const [component, ports] of Object.entries(needs)) {
    const np = policyFor(component);
    if (!np) {
      out.push(`no NetworkPolicy for the ${component} pods`);
      continue;
    }
    if (!['Ingress', 'Egress'].every((t) => (np.spec.policyTypes ?? []).includes(t)))
      out.push(`NetworkPolicy/${np.metadata.name}: must restrict ingress and egress`);
    const egress = portsOf(np.spec.egress ?? []);
    for (const p of ports) if (!egress.has(p)) out.push(`NetworkPolicy/${np.metadata.name}: no egress on ${p}`);
    for (const p of egress) if (!ports.includes(p as string)) out.push(`NetworkPolicy/${np.metadata.name}: egress on ${p}, which it does not need`);
  }
  const gw = policyFor('gateway');
  if (gw && !(gw.spec.ingress ?? []).some((r: any) => !r.from && portsOf([r]).has('TCP/8080')))
    out.push('NetworkPolicy for the gateway: its port is not open to clients');
  const admin = policyFor('admin');
  for (const r of admin?.spec.ingress ?? []) {
    if (!r.from) out.push('NetworkPolicy for the admin API: a rule admits any source');
    for (const peer of r.from ?? [])
      if (peer.podSelector && !peer.namespaceSelector && selects(peer.podSelector, podLabels('gateway')))
        out.push('NetworkPolicy for the admin API: the gateway pods (which face clients) may reach it');
  }
  if ((policyFor('migrate')?.spec.ingress ?? []).length) out.push('NetworkPolicy for the migrate Job: admits ingress');
  return out;
}

const cores = (q: string) => (q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q));

const describeRendered = kubectl ? describe : describe.skip;

describeRendered('Kubernetes manifests (deploy/k8s, rendered with kubectl kustomize)', () => {
  let dir: string;
  const rendered = {} as Record<Overlay, K8sObject[]>;
  beforeAll(() => {
    dir = renderTree();
    for (const o of OVERLAYS) rendered[o] = render(dir, o);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe.each(OVERLAYS)('overlays/%s', (overlay) => {
    const objs = () => rendered[overlay];

    it('every object is valid against the Kubernetes schemas, with no unknown field', () => {
      const kinds = objs().map((o) => o.kind);
      for (const k of ['Namespace', 'ServiceAccount', 'ConfigMap', 'Secret', 'Deployment', 'Service', 'PodDisruptionBudget', 'Job', 'NetworkPolicy'])
        expect(kinds).toContain(k);
      expect(objs().flatMap(schemaProblems)).toEqual([]);
    });

    it('lives in one namespace, which it creates', () => {
      const ns = named(objs(), 'Namespace', 'llm-gateway');
      expect(ns?.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
      expect(
        objs()
          .filter((o) => o.kind !== 'Namespace' && o.metadata.namespace !== 'llm-gateway')
          .map((o) => `${o.kind}/${o.metadata.name}`),
      ).toEqual([]);
    });

    it('every variable is one the apps read, every Secret and key referenced exists, and the configuration parses', () => {
      expect(envProblems(objs())).toEqual([]);
      const all = containers(objs());
      expect(all.map((x) => x.where).sort()).toEqual([
        'Deployment/llm-gateway-admin/admin',
        'Deployment/llm-gateway-admin/init:wait-for-migrations',
        'Deployment/llm-gateway/gateway',
        'Deployment/llm-gateway/init:wait-for-migrations',
        'Job/llm-gateway-migrate/migrate',
      ]);
      for (const x of all) expect(x.cfg?.databaseUrl).toBeDefined();
      // The apps never migrate: the Job does, once per release.
      for (const x of all.filter((y) => y.entry?.routes)) expect(x.env.DB_MIGRATE).toBe('false');
    });

    it('an unedited secrets.env.example stops the apps at start, naming MASTER_KEY', () => {
      const example = readFileSync(join(__dirname, 'overlays', overlay.startsWith('scaled') ? 'scaled' : overlay, 'secrets.env.example'), 'utf8');
      const values = Object.fromEntries(
        example
          .split('\n')
          .filter((l) => /^[A-Z_]+=/.test(l))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      expect(() => parseConfig(values)).toThrow(/MASTER_KEY/);
    });

    it('the SIGTERM drain fits in terminationGracePeriodSeconds', () => {
      expect(shutdownProblems(objs())).toEqual([]);
    });

    it('probes are /healthz (liveness, startup) and /readyz (readiness), routes the apps serve on their port', () => {
      expect(routesOf(HealthController)).toEqual(expect.arrayContaining(['/healthz', '/readyz']));
      expect(probeProblems(objs())).toEqual([]);
    });

    it('Services, the PodDisruptionBudget, NetworkPolicies and the autoscaler select the workloads they are for', () => {
      expect(selectorProblems(objs())).toEqual([]);
      const pdb = named(objs(), 'PodDisruptionBudget', 'llm-gateway')!;
      expect(selects(pdb.spec.selector, named(objs(), 'Deployment', 'llm-gateway')!.spec.template.metadata.labels)).toBe(true);
    });

    it('pods run unprivileged on a read-only root filesystem; the usage journal is on a volume', () => {
      expect(securityProblems(objs())).toEqual([]);
    });

    it('NetworkPolicies: gateway open to clients, admin API closed to the gateway, egress to DNS, PostgreSQL, Redis, HTTPS', () => {
      expect(networkProblems(objs())).toEqual([]);
    });

    it('every container runs the one image', () => {
      const images = new Set(containers(objs()).map((x) => x.c.image));
      expect([...images]).toEqual(['llm-gateway:0.1.0']);
    });
  });

  it('single: one gateway, limits in its memory unless REDIS_URL is set, no autoscaler', () => {
    const objs = rendered.single;
    expect(named(objs, 'Deployment', 'llm-gateway')!.spec.replicas).toBe(1);
    expect(ofKind(objs, 'HorizontalPodAutoscaler')).toEqual([]);
    const gw = containers(objs).find((x) => !x.init && x.obj.metadata.name === 'llm-gateway')!;
    expect(gw.secretRefs.get('REDIS_URL')).toBe(true);
    expect(gw.env.GATEWAY_WORKERS).toBeUndefined();
  });

  it.each(['scaled', 'scaled-in-flight', 'scaled-shared-journal'] as const)(
    '%s: at least 2 replicas on Redis, one worker per requested core, PostgreSQL connections within max_connections',
    (overlay) => {
      const objs = rendered[overlay];
      const hpa = named(objs, 'HorizontalPodAutoscaler', 'llm-gateway')!;
      expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
      const all = containers(objs);
      const gw = all.find((x) => !x.init && x.obj.metadata.name === 'llm-gateway')!;
      const admin = all.find((x) => !x.init && x.obj.metadata.name === 'llm-gateway-admin')!;
      const migrate = all.find((x) => x.obj.kind === 'Job')!;
      // REDIS_URL is required: a pod without it does not start (shared limits are not optional with replicas).
      for (const x of [gw, admin]) {
        expect(x.secretRefs.get('REDIS_URL')).toBe(false);
        expect(x.cfg!.redisUrl).toBeDefined();
      }
      const workers = Number(gw.env.GATEWAY_WORKERS);
      expect(workers).toBe(cores(gw.c.resources.requests.cpu));
      const connections =
        hpa.spec.maxReplicas * workers * gw.cfg!.databasePoolSize + admin.obj.spec.replicas * admin.cfg!.databasePoolSize + migrate.cfg!.databasePoolSize;
      expect(connections).toBeLessThanOrEqual(PG_CONNECTIONS);
    },
  );

  it('scaled-in-flight: the component adds the in-flight gauge, served to the HPA by the prometheus-adapter rule', () => {
    const metrics = named(rendered['scaled-in-flight'], 'HorizontalPodAutoscaler', 'llm-gateway')!.spec.metrics as any[];
    expect(metrics.map((m) => m.type)).toEqual(['Resource', 'Pods']);
    const name = metrics[1].pods.metric.name as string;
    // The gauge GatewayMetrics really exports.
    expect(readFileSync(join(ROOT, 'libs/observability/src/gateway.metrics.ts'), 'utf8')).toContain(`name: '${name}'`);
    const values = parse(readFileSync(join(__dirname, 'components/in-flight-autoscaling/prometheus-adapter.values.yaml'), 'utf8'));
    const rule = values.rules.custom.find((r: any) => r.name.as === name);
    expect(rule.seriesQuery).toContain(name);
    expect(rule.resources.overrides.pod.resource).toBe('pod');
    expect(named(rendered.scaled, 'HorizontalPodAutoscaler', 'llm-gateway')!.spec.metrics).toHaveLength(1);
  });

  it('scaled-shared-journal: every gateway pod mounts one ReadWriteMany claim on /data, the only change', () => {
    const objs = rendered['scaled-shared-journal'];
    const volumes = named(objs, 'Deployment', 'llm-gateway')!.spec.template.spec.volumes;
    expect(volumes).toEqual([{ name: 'data', persistentVolumeClaim: { claimName: 'llm-gateway-journal' } }]);
    expect(named(objs, 'PersistentVolumeClaim', 'llm-gateway-journal')!.spec.accessModes).toEqual(['ReadWriteMany']);
    const others = (o: K8sObject[]) => o.filter((x) => x.kind !== 'PersistentVolumeClaim' && !(x.kind === 'Deployment' && x.metadata.name === 'llm-gateway'));
    expect(others(objs)).toEqual(others(rendered.scaled));
    // A claim only one node can mount would stop the second replica.
    const rwo = structuredClone(objs);
    named(rwo, 'PersistentVolumeClaim', 'llm-gateway-journal')!.spec.accessModes = ['ReadWriteOnce'];
    expect(securityProblems(rwo)).toEqual([expect.stringContaining('not ReadWriteMany')]);
  });

  describe('a broken manifest fails the checks', () => {
    const mutated = (mutate: (objs: K8sObject[]) => void) => {
      const objs = structuredClone(rendered.scaled);
      mutate(objs);
      return objs;
    };
    const gateway = (objs: K8sObject[]) => named(objs, 'Deployment', 'llm-gateway')!;

    it('an unknown field (a misspelt probe) is refused, though the schema alone lets it through', () => {
      const objs = mutated((o) => {
        const c = gateway(o).spec.template.spec.containers[0];
        c.livenessprobe = c.livenessProbe;
      });
      expect(unknownFields(gateway(objs))).toEqual(['/spec/template/spec/containers/0/livenessprobe']);
      expect(schemaProblems(gateway(objs))).toEqual([
        expect.stringContaining('/spec/template/spec/containers/0/livenessprobe is not a field of apps/v1 Deployment'),
      ]);
      const hpa = mutated((o) => (named(o, 'HorizontalPodAutoscaler', 'llm-gateway')!.spec.minReplica = 2));
      expect(hpa.flatMap(schemaProblems)).toEqual([expect.stringContaining('/spec/minReplica is not a field')]);
    });

    it('a wrong type, a missing required field and an unknown kind are refused', () => {
      expect(
        schemaProblems(mutated((o) => (gateway(o).spec.template.spec.terminationGracePeriodSeconds = '50')).find((x) => x.kind === 'Deployment')!),
      ).toEqual([expect.stringContaining('/spec/template/spec/terminationGracePeriodSeconds must be integer')]);
      const noImage = mutated((o) => delete gateway(o).spec.template.spec.containers[0].name);
      expect(schemaProblems(gateway(noImage)).join()).toMatch(/containers\/0.*name/);
      expect(schemaProblems({ apiVersion: 'extensions/v1beta1', kind: 'Ingress', metadata: { name: 'x' } })).toEqual([expect.stringContaining('no schema')]);
    });

    it('a grace period shorter than the drain, an unknown variable, a missing secret key, a wrong probe path, a stray selector', () => {
      expect(shutdownProblems(mutated((o) => (gateway(o).spec.template.spec.terminationGracePeriodSeconds = 30)))).toEqual([
        expect.stringContaining('terminationGracePeriodSeconds 30'),
      ]);
      const typo = mutated((o) => (ofKind(o, 'ConfigMap')[0].data.SHUTDOWN_GRACE_SECONDS = '30'));
      expect(envProblems(typo)).toEqual(expect.arrayContaining([expect.stringContaining('SHUTDOWN_GRACE_SECONDS is not a variable the apps read')]));
      const leaked = mutated((o) => (ofKind(o, 'ConfigMap')[0].data.MASTER_KEY = '0'.repeat(64)));
      expect(envProblems(leaked)).toEqual([expect.stringContaining('MASTER_KEY belongs in the Secret')]);
      const noKey = mutated((o) => delete ofKind(o, 'Secret')[0].data.METRICS_TOKEN);
      expect(envProblems(noKey)).toEqual(expect.arrayContaining([expect.stringContaining('needs key METRICS_TOKEN')]));
      const noWait = mutated((o) => delete gateway(o).spec.template.spec.initContainers);
      expect(probeProblems(noWait)).toEqual([expect.stringContaining('no init container waiting for migrations')]);
      const badProbe = mutated((o) => (gateway(o).spec.template.spec.containers[0].readinessProbe.httpGet.path = '/ready'));
      expect(probeProblems(badProbe).join('\n')).toMatch(/readinessProbe on \/ready, expected \/readyz/);
      const pdb = mutated((o) => (named(o, 'PodDisruptionBudget', 'llm-gateway')!.spec.selector.matchLabels['app.kubernetes.io/component'] = 'admin'));
      expect(selectorProblems(pdb)).toEqual(['PodDisruptionBudget/llm-gateway: selects ["llm-gateway-admin"], not Deployment llm-gateway']);
      const hpa = mutated((o) => (named(o, 'HorizontalPodAutoscaler', 'llm-gateway')!.spec.scaleTargetRef.name = 'gateway'));
      expect(selectorProblems(hpa)).toEqual([expect.stringContaining('targets apps/v1 Deployment gateway')]);
    });

    it('a writable root filesystem, the journal off its volume, the admin API open to the gateway', () => {
      const rw = mutated((o) => (gateway(o).spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false));
      expect(securityProblems(rw)).toEqual([expect.stringContaining('root filesystem is writable')]);
      const journal = mutated((o) => (ofKind(o, 'ConfigMap')[0].data.JOURNAL_DIR = '/var/journal'));
      expect(securityProblems(journal)).toEqual([expect.stringContaining('usage journal (/var/journal)')]);
      const open = mutated((o) => (named(o, 'NetworkPolicy', 'llm-gateway-admin')!.spec.ingress[0].from[0].podSelector = {}));
      expect(networkProblems(open)).toEqual([expect.stringContaining('the gateway pods')]);
    });
  });
});
