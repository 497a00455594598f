// `npm start`'s total memory: the all-in-one app started the way a newcomer starts it (`npm start`: build, then
// gateway + admin + embedded PGlite, no DATABASE_URL, a fresh DATA_DIR), loaded with the bench's workloads, its
// memory summed over the whole process tree from /proc (so an embedded database in a child process counts too).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codexHeaders } from './codex-body.mjs';
import { load, peakRssMb, processLabel, pssMb, rssMb, tree } from './measure.mjs';
import { ADMIN_TOKEN, configure, waitReady } from './setup.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * npm, its `sh -c` and scripts/start.mjs only launch; everything else in the tree is the app (gateway + admin +
 * embedded database), wherever the database process hangs (under the app or beside it).
 */
const isLauncher = (label) => /^npm\b|^sh\b|npm-cli\.js|scripts\/start\.mjs/.test(label);

/** RSS (and PSS) of the app's processes and of the whole tree under npm, from /proc. */
function treeSplit(root) {
  const procs = tree(root).map((pid) => ({ pid, label: processLabel(pid), rss: rssMb(pid) }));
  const sum = (xs) => xs.filter((p) => Number.isFinite(p.rss)).reduce((a, p) => a + p.rss, 0);
  return { app: sum(procs.filter((p) => !isLauncher(p.label))), all: sum(procs), procs };
}

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
  // No npm on PATH, or the app exiting at start (a port taken, a bad env): fail now, not after the wait.
  const exited = new Promise((_, reject) => {
    npm.once('error', (e) => reject(e));
    npm.once('exit', (code) => reject(new Error(`npm start exited with ${code}`)));
  });
  exited.catch(() => undefined);
  // Sampled from the spawn on: the start (PGlite's first boot and migrations) may be the peak.
  const samples = [];
  let phase = 'start';
  const sampler = setInterval(() => {
    const { app, all } = treeSplit(npm.pid);
    samples.push({ phase, app, all });
  }, 250);
  const killGroup = (sig) => {
    try {
      process.kill(-npm.pid, sig);
    } catch {
      // already gone
    }
  };
  const gwOrigin = `http://127.0.0.1:${port}`;
  const adminOrigin = `http://127.0.0.1:${port + 1}`;
  try {
    await Promise.race([exited, waitReady(`${gwOrigin}/readyz`, 1200).then(() => waitReady(`${adminOrigin}/readyz`, 1200))]);
  } catch (e) {
    clearInterval(sampler);
    killGroup('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`npm start did not become ready: ${e.message}\n${stderr}`);
  }
  const startupSeconds = (performance.now() - t0) / 1000;
  const secret = await configure(adminOrigin, upstreams);
  await sleep(1000);
  const idle = treeSplit(npm.pid);
  phase = 'load';
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

  const after = treeSplit(npm.pid);
  const pids = after.procs.map((p) => p.pid);
  const processes = after.procs.map((p) => ({ pid: p.pid, label: p.label, inApp: !isLauncher(p.label), rssMb: p.rss, peakRssMb: peakRssMb(p.pid) }));
  const result = {
    startupSeconds,
    idle: { appMb: idle.app, allMb: idle.all },
    peak: {
      appMb: Math.max(...samples.map((s) => s.app)),
      allMb: Math.max(...samples.map((s) => s.all)),
      startAppMb: Math.max(...samples.filter((s) => s.phase === 'start').map((s) => s.app)),
      loadAppMb: Math.max(...samples.filter((s) => s.phase === 'load').map((s) => s.app)),
    },
    appHighWaterSumMb: processes.filter((p) => p.inApp).reduce((s, p) => s + p.peakRssMb, 0),
    afterLoad: { appMb: after.app, allMb: after.all, appPssMb: processes.filter((p) => p.inApp).reduce((s, p) => s + pssMb(p.pid), 0) },
    processes,
    loads: Object.fromEntries(Object.entries(loads).map(([k, r]) => [k, { rps: r.rps, p50: r.p50, p99: r.p99, errors: r.errors }])),
  };

  killGroup('SIGTERM');
  for (let i = 0; i < 300 && pids.some((p) => existsSync(`/proc/${p}`)); i++) await sleep(100);
  if (pids.some((p) => existsSync(`/proc/${p}`))) killGroup('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
  return result;
}
