// `npm run bench`: what the gateway adds to a call, measured against a direct call to the upstream
// and against a bare pass-through proxy, in the same run on the same machine.
//   BENCH_SECONDS=8 (per cell)  BENCH_CONCURRENCY=1,16,64  BENCH_SOAK_SECONDS=0 (e.g. 600 for the memory soak)
//   BENCH_REDIS_URL (limits in Redis)  BENCH_GATEWAY_WORKERS (GATEWAY_WORKERS; CPU and RSS count the workers too)
// Prints one table and writes bench/results.json. It is a benchmark, not a test: nothing here is asserted.
import { fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,16,64').split(',').map(Number);
const SOAK = Number(process.env.BENCH_SOAK_SECONDS ?? 0);
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello in one short sentence.' }], max_tokens: 64 });
const STREAM_BODY = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'Stream please.' }], max_tokens: 64 });

const children = [];
function child(script, args) {
  return new Promise((resolve, reject) => {
    const c = fork(script, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    children.push(c);
    c.once('message', (m) => resolve({ proc: c, port: m.port, url: m.url }));
    c.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
}
function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
}
/** Stops a child with SIGTERM and waits for it (so a --cpu-prof profile gets written). */
function stop(c) {
  return c.exitCode !== null
    ? Promise.resolve()
    : new Promise((r) => {
        c.once('exit', r);
        c.kill('SIGTERM');
      });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

async function waitReady(url) {
  for (let i = 0; i < 300; i++) {
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready`);
}

/** The process and its children (a gateway with GATEWAY_WORKERS > 1 is a primary and its workers), from /proc. */
function processTree(pid) {
  const pids = [pid];
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        if (Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === pid) pids.push(Number(name));
      } catch {
        /* gone */
      }
    }
  } catch {
    /* not Linux */
  }
  return pids;
}

/** Resident memory of the process and its children (workers), in MB. */
function rssMb(pid) {
  try {
    let kb = 0;
    for (const p of processTree(pid)) kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? NaN);
    return kb / 1024;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) a process and its children (workers) have used so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid) {
  try {
    let ticks = 0;
    for (const p of processTree(pid)) {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      // fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command; in clock ticks (100 Hz on Linux)
      ticks += Number(f[11]) + Number(f[12]);
    }
    return ticks / 100;
  } catch {
    return NaN;
  }
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** `c` workers on `c` keep-alive connections, each sending requests back to back for `seconds`. */
async function load(origin, path, headers, body, c, seconds) {
  const pool = new Pool(origin, { connections: c, pipelining: 1, keepAliveTimeout: 30_000 });
  const lat = [];
  let errors = 0;
  let firstError;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          const r = await pool.request({ method: 'POST', path, headers, body });
          if (r.statusCode !== 200) {
            if (!errors++) firstError = `${r.statusCode} ${(await r.body.text()).slice(0, 300)}`;
            else await r.body.dump();
          } else {
            await r.body.dump();
            lat.push(performance.now() - t0);
          }
        } catch (e) {
          if (!errors++) firstError = String(e);
        }
      }
    }),
  );
  await pool.close();
  lat.sort((a, b) => a - b);
  if (firstError) console.error(`${origin}${path} at ${c} connections: ${errors} errors, first: ${firstError}`);
  return { rps: lat.length / seconds, p50: pct(lat, 50), p99: pct(lat, 99), n: lat.length, errors };
}

/** Sequential streams: time to first content byte and total time. */
async function streams(origin, path, headers, body, n) {
  const pool = new Pool(origin, { connections: 1 });
  const ttfb = [];
  const total = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await pool.request({ method: 'POST', path, headers, body });
    let first = 0;
    for await (const chunk of r.body) {
      if (!first && chunk.toString().includes('"content":"H')) first = performance.now() - t0;
    }
    ttfb.push(first);
    total.push(performance.now() - t0);
  }
  await pool.close();
  ttfb.sort((a, b) => a - b);
  total.sort((a, b) => a - b);
  return { ttfbP50: pct(ttfb, 50), ttfbP99: pct(ttfb, 99), totalP50: pct(total, 50) };
}

async function main() {
  if (spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' }).status !== 0) process.exit(1);
  // The pre-body authentication on its own (issue 13): CPU per decision with 100k keys in memory.
  const preBodyAuth = await new Promise((resolve, reject) => {
    const c = fork('scripts/bench/pre-body-auth.mjs', [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    c.once('message', resolve);
    c.once('exit', (code) => code && reject(new Error(`pre-body-auth bench exited ${code}`)));
  });
  const upstream = await child('scripts/bench/fake-upstream.mjs', ['2', '0', '5']);
  const streamUpstream = await child('scripts/bench/fake-upstream.mjs', ['2', '5', '20']);
  const bare = await child('scripts/bench/bare-proxy.mjs', [`http://127.0.0.1:${upstream.port}`]);

  const dataDir = mkdtempSync(join(tmpdir(), 'gw-bench-'));
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? (await child('dist/libs/db/src/embedded-postgres.main.js', [dataDir])).url;
  const gwPort = 18480 + Math.floor(Math.random() * 500);
  const env = {
    PATH: process.env.PATH,
    DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    GATEWAY_PORT: String(gwPort),
    ADMIN_PORT: String(gwPort + 1),
    HOST: '127.0.0.1',
    ADMIN_TOKEN,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    ...(process.env.BENCH_REDIS_URL ? { REDIS_URL: process.env.BENCH_REDIS_URL } : {}),
    // With Redis the gateway runs one worker per core unless told otherwise (BENCH_GATEWAY_WORKERS=1 for one).
    ...(process.env.BENCH_GATEWAY_WORKERS ? { GATEWAY_WORKERS: process.env.BENCH_GATEWAY_WORKERS } : {}),
  };
  // Production shape: gateway and admin are separate processes; only the gateway is measured.
  const adminProc = spawn(process.execPath, ['dist/apps/admin/src/main.js'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(adminProc);
  await waitReady(`http://127.0.0.1:${gwPort + 1}/readyz`);
  // e.g. BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=bench/profiles" to profile the gateway under this load.
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const gw = spawn(process.execPath, [...nodeArgs, 'dist/apps/gateway/src/main.js'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(gw);
  const gwOrigin = `http://127.0.0.1:${gwPort}`;
  const admin = `http://127.0.0.1:${gwPort + 1}/admin`;
  await waitReady(`${gwOrigin}/readyz`);
  await waitReady(`http://127.0.0.1:${gwPort + 1}/readyz`);
  const api = async (path, body) => {
    const r = await fetch(admin + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  // Every feature on: limits and budgets set (high enough never to refuse), a priced model, metering, metrics.
  const limits = {
    requestsPerMinute: 10_000_000,
    tokensPerMinute: 10_000_000_000,
    concurrentRequests: 10_000,
    dailyBudgetUsd: 1_000_000,
    monthlyBudgetUsd: 10_000_000,
  };
  const tenant = await api('/tenants', { name: 'bench', limits });
  const key = await api(`/tenants/${tenant.id}/keys`, { name: 'bench', limits });
  const p1 = await api('/providers', { name: 'fake', kind: 'openai', baseUrl: `http://127.0.0.1:${upstream.port}/v1`, credential: 'sk-bench' });
  const p2 = await api('/providers', { name: 'fake-stream', kind: 'openai', baseUrl: `http://127.0.0.1:${streamUpstream.port}/v1`, credential: 'sk-bench' });
  await api('/routes', { modelPattern: 'gpt-4o-mini', targets: [{ providerId: p1.id }] });
  await api('/routes', { modelPattern: 'stream-model', targets: [{ providerId: p2.id, model: 'gpt-4o-mini' }] });
  await new Promise((r) => setTimeout(r, 1000));

  const json = { 'content-type': 'application/json', authorization: 'Bearer sk-bench' };
  const gwHeaders = { 'content-type': 'application/json', authorization: `Bearer ${key.secret}` };
  // `pid`: the process whose CPU per request is reported (for the direct call, the upstream's own cost).
  const targets = [
    { name: 'direct', origin: `http://127.0.0.1:${upstream.port}`, path: '/v1/chat/completions', headers: json, pid: upstream.proc.pid },
    { name: 'bare-proxy', origin: `http://127.0.0.1:${bare.port}`, path: '/v1/chat/completions', headers: json, pid: bare.proc.pid },
    { name: 'gateway', origin: gwOrigin, path: '/v1/chat/completions', headers: gwHeaders, pid: gw.pid },
  ];

  // BENCH_TARGETS=gateway loads only the gateway (with BENCH_GATEWAY_NODE_ARGS, a clean profile);
  // the table then lacks the ratios, which need all three.
  const only = process.env.BENCH_TARGETS?.split(',');
  const measured = only ? targets.filter((t) => only.includes(t.name)) : targets;
  const rows = [];
  const rss = [];
  const sampler = setInterval(() => rss.push(rssMb(gw.pid)), 500);
  for (const c of CONCURRENCY) {
    for (const t of measured) {
      await load(t.origin, t.path, t.headers, BODY, c, WARMUP);
      const cpu0 = cpuSeconds(t.pid);
      const r = await load(t.origin, t.path, t.headers, BODY, c, SECONDS);
      // CPU of the measured process per request it served (the proxy's own cost, not the load generator's).
      const cpuUsPerReq = ((cpuSeconds(t.pid) - cpu0) * 1e6) / (r.n + r.errors);
      rows.push({ target: t.name, concurrency: c, ...r, cpuUsPerReq });
    }
  }
  // Streams: the same fake (20 chunks, 5 ms apart) directly and through the gateway.
  const streamDirect = await streams(`http://127.0.0.1:${streamUpstream.port}`, '/v1/chat/completions', json, STREAM_BODY, 100);
  const streamsViaGw = await streams(gwOrigin, '/v1/chat/completions', gwHeaders, STREAM_BODY.replace('gpt-4o-mini', 'stream-model'), 100);

  let soak;
  if (SOAK > 0) {
    const before = rssMb(gw.pid);
    const samples = [];
    const s = setInterval(() => samples.push(rssMb(gw.pid)), 10_000);
    await load(gwOrigin, '/v1/chat/completions', gwHeaders, BODY, 16, SOAK);
    clearInterval(s);
    soak = { seconds: SOAK, rssStartMb: before, rssEndMb: rssMb(gw.pid), rssMaxMb: Math.max(...samples), samplesMb: samples.map((x) => Math.round(x)) };
  }
  clearInterval(sampler);

  const direct = Object.fromEntries(rows.filter((r) => r.target === 'direct').map((r) => [r.concurrency, r]));
  const bareBy = Object.fromEntries(rows.filter((r) => r.target === 'bare-proxy').map((r) => [r.concurrency, r]));
  for (const r of rows) {
    r.overheadP50Ms = r.p50 - direct[r.concurrency]?.p50;
    r.overheadP99Ms = r.p99 - direct[r.concurrency]?.p99;
    r.vsBareProxy = r.rps / bareBy[r.concurrency]?.rps;
  }
  const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  console.log('\n| target | conc. | req/s | p50 ms | p99 ms | +p50 ms vs direct | +p99 ms vs direct | throughput vs bare proxy | CPU µs/req |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.target} | ${r.concurrency} | ${f(r.rps, 0)} | ${f(r.p50)} | ${f(r.p99)} | ${r.target === 'direct' ? '' : f(r.overheadP50Ms)} | ${r.target === 'direct' ? '' : f(r.overheadP99Ms)} | ${f(r.vsBareProxy)} | ${f(r.cpuUsPerReq, 0)} |`,
    );
  }
  const streamRow = {
    directTtfbP50: streamDirect.ttfbP50,
    gatewayTtfbP50: streamsViaGw.ttfbP50,
    ttfbOverheadP50Ms: streamsViaGw.ttfbP50 - streamDirect.ttfbP50,
    ttfbOverheadP99Ms: streamsViaGw.ttfbP99 - streamDirect.ttfbP99,
    perStreamAfterFirstByteMs: streamsViaGw.totalP50 - streamsViaGw.ttfbP50 - (streamDirect.totalP50 - streamDirect.ttfbP50),
  };
  console.log(
    `\nstreaming (20 chunks, 5 ms apart): TTFB p50 direct ${f(streamDirect.ttfbP50)} ms, gateway ${f(streamsViaGw.ttfbP50)} ms (+${f(streamRow.ttfbOverheadP50Ms)} ms, p99 +${f(streamRow.ttfbOverheadP99Ms)} ms); after the first byte the gateway adds ${f(streamRow.perStreamAfterFirstByteMs)} ms per whole stream`,
  );
  console.log(
    `pre-body authentication: ${f(preBodyAuth.validKeyCpuUs)} µs CPU per request with a valid key, ${f(preBodyAuth.unknownKeyCpuUs)} µs per unknown key (${preBodyAuth.keys} keys in memory, ${preBodyAuth.heapBytesPerKey} bytes of heap per key)`,
  );
  const rssValid = rss.filter(Number.isFinite);
  console.log(
    `gateway RSS: max ${f(Math.max(...rssValid), 0)} MB during the run (after warm-up ${f(rssValid[Math.min(4, rssValid.length - 1)], 0)} MB, at the end ${f(rssValid[rssValid.length - 1], 0)} MB)`,
  );
  if (soak) console.log(`soak ${SOAK}s at 16 connections: RSS ${f(soak.rssStartMb, 0)} → ${f(soak.rssEndMb, 0)} MB (max ${f(soak.rssMaxMb, 0)} MB)`);
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGb: Math.round(totalmem() / 2 ** 30), node: process.version };
  console.log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGb} GB, Node ${machine.node}; ${SECONDS}s per cell after ${WARMUP}s warm-up`);
  writeFileSync(
    'bench/results.json',
    JSON.stringify(
      {
        at: new Date().toISOString(),
        machine,
        seconds: SECONDS,
        rows,
        streaming: streamRow,
        rssMb: { max: Math.max(...rssValid), end: rssValid[rssValid.length - 1] },
        soak,
        preBodyAuth,
      },
      null,
      2,
    ) + '\n',
  );
  await stop(gw);
  cleanup();
  rmSync(dataDir, { recursive: true, force: true });
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  cleanup();
  process.exit(1);
});
