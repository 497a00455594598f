// `npm start`'s total memory: the all-in-one app started the way a newcomer starts it (`npm start`: build, then
// gateway + admin + embedded PGlite, no DATABASE_URL, a fresh DATA_DIR), loaded with the bench's workloads, its
// memory summed over the whole process tree from /proc (so an embedded database in a child process counts too).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codexHeaders } from './codex-body.mjs';
import { load, peakRssMb, processLabel, rssMb, tree, treeMemoryMb } from './measure.mjs';
import { ADMIN_TOKEN, configure, waitReady } from './setup.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The app's process: the one running apps/all-in-one (under npm, sh and scripts/start.mjs). */
const appPid = (root) => tree(root).find((p) => processLabel(p).includes('apps/all-in-one'));

export async function measureNpmStart({ upstreams, seconds, codex, check, codexBody }) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-bench-npm-start-'));
  const port = 19080 + Math.floor(Math.random() * 500);
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME ?? dataDir,
    DATA_DIR: dataDir,
    GATEWAY_PORT: String(port),
    ADMIN_PORT: String(port + 1),
    HOST: '127.0.0.1',
    ADMIN_TOKEN,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
  };
  const t0 = performance.now();
  // Its own process group, so that one signal reaches npm, scripts/start.mjs and the app (as Ctrl-C does).
  const npm = spawn('npm', ['start'], { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  npm.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const gwOrigin = `http://127.0.0.1:${port}`;
  const adminOrigin = `http://127.0.0.1:${port + 1}`;
  try {
    await waitReady(`${gwOrigin}/readyz`, 1200);
    await waitReady(`${adminOrigin}/readyz`, 1200);
  } catch (e) {
    process.kill(-npm.pid, 'SIGKILL');
    throw new Error(`npm start did not become ready: ${e.message}\n${stderr}`);
  }
  const startupSeconds = (performance.now() - t0) / 1000;
  const app = appPid(npm.pid);
  const idle = { app: treeMemoryMb(app), all: treeMemoryMb(npm.pid) };
  const secret = await configure(adminOrigin, upstreams);
  await sleep(1000);

  const samples = [];
  const sampler = setInterval(() => samples.push({ app: treeMemoryMb(app).rss, all: treeMemoryMb(npm.pid).rss }), 250);
  const gwHeaders = { 'content-type': 'application/json', authorization: `Bearer ${secret}` };
  const small = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello in one short sentence.' }], max_tokens: 64 });
  const loads = {};
  await load(gwOrigin, '/v1/chat/completions', gwHeaders, small, 64, 1);
  loads.smallChatC64 = await load(gwOrigin, '/v1/chat/completions', gwHeaders, small, 64, seconds);
  const h = codexHeaders(`Bearer ${secret}`);
  loads.codexPassThrough = await load(gwOrigin, '/v1/responses', h, codexBody('codex-pass'), codex.concurrency, seconds, check);
  loads.codexTranslation = await load(gwOrigin, '/v1/responses', h, codexBody('codex-chat'), codex.concurrency, seconds, check);
  clearInterval(sampler);
  await sleep(5000);

  const pids = tree(npm.pid);
  const appPids = new Set(tree(app));
  const processes = pids.map((p) => ({ pid: p, label: processLabel(p), inApp: appPids.has(p), rssMb: rssMb(p), peakRssMb: peakRssMb(p) }));
  const result = {
    startupSeconds,
    idle,
    peak: { appMb: Math.max(...samples.map((s) => s.app)), allMb: Math.max(...samples.map((s) => s.all)) },
    appHighWaterSumMb: processes.filter((p) => p.inApp).reduce((s, p) => s + p.peakRssMb, 0),
    afterLoad: { app: treeMemoryMb(app), all: treeMemoryMb(npm.pid) },
    processes,
    loads: Object.fromEntries(Object.entries(loads).map(([k, r]) => [k, { rps: r.rps, p50: r.p50, p99: r.p99, errors: r.errors }])),
  };

  process.kill(-npm.pid, 'SIGTERM');
  for (let i = 0; i < 300 && pids.some((p) => existsSync(`/proc/${p}`)); i++) await sleep(100);
  if (pids.some((p) => existsSync(`/proc/${p}`))) process.kill(-npm.pid, 'SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
  return result;
}
