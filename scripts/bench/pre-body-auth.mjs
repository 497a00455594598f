// The pre-body authentication's own cost (issue 13): CPU µs per decision for a valid and an unknown key, with the
// whole key set in memory (BENCH_KEYS, default 100k), plus the key set's load time and heap per key. Runs on the
// swc build in dist/ (`npm run bench` builds it first; alone: `node scripts/build.mjs && node scripts/bench/pre-body-auth.mjs`).
// Prints one JSON line (and sends it to the parent when forked).
import { createRequire } from 'node:module';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { resolve } from 'node:path';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const dist = (p) => require(resolve('dist', p));
const { KeyCache } = dist('libs/tenancy/src/key-cache.js');
const { PreBodyAuthenticator } = dist('libs/auth/src/pre-body.authenticator.js');

const N = Number(process.env.BENCH_KEYS ?? 100_000);
const ITER = Number(process.env.BENCH_AUTH_ITERATIONS ?? 200_000);
const tenants = Array.from({ length: 100 }, (_, i) => ({ id: randomUUID(), name: `tenant-${i}` }));
const secretOf = (i) => `sk-gw-${createHash('sha256').update(`bench-${i}`).digest('base64url').slice(0, 32)}`;
const secrets = Array.from({ length: 1000 }, (_, j) => secretOf(j * Math.floor(N / 1000)));
// Rows made as the load reads them (fresh strings and objects per row, as pg hands them over), kept by nobody else.
const repo = {
  forEachActive: async (onRow) => {
    for (let i = 0; i < N; i++) {
      const t = tenants[i % tenants.length];
      const secret = secretOf(i);
      onRow({
        id: randomUUID(),
        tenant_id: `${t.id}`.slice(0),
        name: `key-${i}`,
        prefix: secret.slice(0, 12),
        key_hash: createHash('sha256').update(secret).digest('hex'),
        allowed_models: null,
        allowed_ips: null,
        limits: JSON.parse('{}'),
        expires_at: null,
        tenant_name: `${t.name}`,
        tenant_limits: JSON.parse('{}'),
      });
    }
  },
  touch: async () => undefined,
};
const cache = new KeyCache(repo, { subscribe: () => () => undefined });
global.gc?.();
const heapBefore = process.memoryUsage().heapUsed;
const t0 = performance.now();
await cache.onApplicationBootstrap();
const loadMs = performance.now() - t0;
global.gc?.();
const heapPerKey = global.gc ? Math.round((process.memoryUsage().heapUsed - heapBefore) / N) : null;
const auth = new PreBodyAuthenticator(cache);

const req = (secret) => ({ headers: { authorization: `Bearer ${secret}` }, socket: { remoteAddress: '127.0.0.1' }, ip: '127.0.0.1' });
function cpuMicros(make) {
  const reqs = Array.from({ length: 1000 }, (_, i) => make(i));
  for (let i = 0; i < 20_000; i++) auth.authenticate(reqs[i % reqs.length]); // warm-up
  const c0 = process.cpuUsage();
  let ok = 0;
  for (let i = 0; i < ITER; i++) if (auth.authenticate(reqs[i % reqs.length]).ok) ok++;
  const c = process.cpuUsage(c0);
  return { us: (c.user + c.system) / ITER, ok };
}
const valid = cpuMicros((i) => req(secrets[i]));
const unknown = cpuMicros(() => req(`sk-gw-${randomBytes(24).toString('base64url')}`));
await cache.onApplicationShutdown();
const result = {
  keys: N,
  loadMs: Math.round(loadMs),
  heapBytesPerKey: heapPerKey,
  validKeyCpuUs: valid.us,
  unknownKeyCpuUs: unknown.us,
  validAccepted: valid.ok === ITER,
  unknownRefused: unknown.ok === 0,
};
console.log(JSON.stringify(result));
process.send?.(result);
