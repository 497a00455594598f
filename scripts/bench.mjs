// `npm run bench`: what the gateway adds to a call, measured against a direct call to the upstream and against a
// bare pass-through proxy, in the same run on the same machine; then `npm start`'s whole memory. Issue 16's goals
// end the output as a table (measured, goal, met). It is a benchmark, not a test: nothing here is asserted.
//   BENCH_SECONDS=8 BENCH_WARMUP_SECONDS=2 BENCH_CONCURRENCY=1,16,64    small chat, per cell
//   BENCH_STREAMS=100                                                   sequential 20-chunk streams per target (TTFB)
//   BENCH_CODEX_SECONDS=5 BENCH_CODEX_WARMUP_SECONDS=1 BENCH_CODEX_CONCURRENCY=16 BENCH_CODEX_DELTAS=200
//   BENCH_CODEX_BODY_BYTES=100000 BENCH_CODEX_CHUNK_DELAY_MS=0          the Codex-shaped /v1/responses rows
//   BENCH_SOAK_SECONDS=0 (600: the memory soak) BENCH_SOAK_WARMUP_SECONDS=60
//   BENCH_NPM_START=1 (0 skips it, only runs it alone) BENCH_NPM_START_SECONDS=5   `npm start`'s total memory under load
//   BENCH_DATABASE_URL=postgres://… (else PGlite in its own process) BENCH_REDIS_URL=redis://… (limits in Redis)
//   BENCH_GATEWAY_WORKERS=n (passed as GATEWAY_WORKERS) BENCH_TARGETS=gateway BENCH_GATEWAY_NODE_ARGS="--cpu-prof …"
// Prints the tables and writes bench/results.json.
import { appNodeFlags } from './node-flags.mjs';
import { execFileSync, fork, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { codexHeaders, codexTurnBody } from './bench/codex-body.mjs';
import { answered, cpuSeconds, load, peakRssMb, streams, treeMemoryMb, tree } from './bench/measure.mjs';
import { measureNpmStart } from './bench/npm-start.mjs';
import { printReport } from './bench/report.mjs';
import { ADMIN_TOKEN, configure, ledgerRequests, waitReady } from './bench/setup.mjs';

const num = (name, dflt) => Number(process.env[name] ?? dflt);
const SECONDS = num('BENCH_SECONDS', 8);
const WARMUP = num('BENCH_WARMUP_SECONDS', 2);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,16,64').split(',').map(Number);
const STREAMS = num('BENCH_STREAMS', 100);
const CODEX = {
  seconds: num('BENCH_CODEX_SECONDS', 5),
  warmup: num('BENCH_CODEX_WARMUP_SECONDS', 1),
  concurrency: num('BENCH_CODEX_CONCURRENCY', 16),
  deltas: num('BENCH_CODEX_DELTAS', 200),
  bodyBytes: num('BENCH_CODEX_BODY_BYTES', 100_000),
  // 0: the fake writes the 200 frames back to back (as the issue measured); a real model spaces them out, so each
  // proxy reads and writes every delta on its own: e.g. 1 measures that (req/s is then bound by the stream's length).
  chunkDelayMs: num('BENCH_CODEX_CHUNK_DELAY_MS', 0),
};
const SOAK = num('BENCH_SOAK_SECONDS', 0);
const SOAK_WARMUP = num('BENCH_SOAK_WARMUP_SECONDS', 60);
// BENCH_NPM_START=only: the `npm start` memory check alone (no tables).
const NPM_START = process.env.BENCH_NPM_START === '0' ? false : process.env.BENCH_NPM_START === 'only' ? 'only' : true;
const SMALL = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello in one short sentence.' }], max_tokens: 64 });
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
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A Codex turn's answer is whole: `deltas` text deltas, then response.completed with usage. */
const codexAnswerCheck = (deltas) => (text) => {
  const n = text.split('"type":"response.output_text.delta"').length - 1;
  if (n !== deltas) return `${n} output_text.delta events, expected ${deltas}`;
  if (!/"type":"response.completed"[\s\S]*"usage":\{/.test(text)) return 'no response.completed with usage';
  return undefined;
};

/** CPU per request of `pid`'s process tree over one cell, after a warm-up (the proxy's own cost, not the load generator's). */
async function cell(t, body, c, seconds, warmup, expect) {
  await load(t.origin, t.path, t.headers, body, c, warmup);
  const cpu0 = cpuSeconds(t.pid);
  const r = await load(t.origin, t.path, t.headers, body, c, seconds, expect);
  return { ...r, cpuUsPerReq: ((cpuSeconds(t.pid) - cpu0) * 1e6) / (r.n + r.errors) };
}

async function main() {
  if (spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' }).status !== 0) process.exit(1);
  const commit = (() => {
    try {
      const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
      return execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() ? `${head}+changes` : head;
    } catch {
      return 'unknown';
    }
  })();
  // The pre-body authentication on its own (issue 13): CPU per decision with 100k keys in memory.
  const preBodyAuth = await new Promise((resolve, reject) => {
    const c = fork('scripts/bench/pre-body-auth.mjs', [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    c.once('message', resolve);
    c.once('exit', (code) => code && reject(new Error(`pre-body-auth bench exited ${code}`)));
  });
  const upstream = await child('scripts/bench/fake-upstream.mjs', ['2', '0', '5']);
  const streamUpstream = await child('scripts/bench/fake-upstream.mjs', ['2', '5', '20']);
  // Codex-shaped turns: 200 deltas back to back (about 4 characters each), as Responses SSE or as chat SSE.
  const codexChars = String(CODEX.deltas * 4);
  const codexFake = (flavor) => child('scripts/bench/fake-upstream.mjs', ['2', String(CODEX.chunkDelayMs), String(CODEX.deltas), flavor, codexChars]);
  const codexResponses = await codexFake('openai');
  const codexChat = await codexFake('openrouter');
  const upstreams = { small: upstream.url, stream: streamUpstream.url, codexResponses: codexResponses.url, codexChat: codexChat.url };
  const codexBody = (model) => codexTurnBody(model, CODEX.bodyBytes);
  const check = codexAnswerCheck(CODEX.deltas);

  // The load average says whether other jobs shared the cores (then every number is noisier and lower).
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAverageAtStart: loadavg()[0],
  };
  const results = { at: new Date().toISOString(), machine, commit, preBodyAuth };
  if (NPM_START !== 'only') Object.assign(results, await productionShape({ upstream, streamUpstream, codexResponses, upstreams, codexBody, check }));
  if (NPM_START) results.npmStart = await measureNpmStart({ upstreams, seconds: num('BENCH_NPM_START_SECONDS', 5), codex: CODEX, check, codexBody });
  machine.loadAverageAtEnd = loadavg()[0];
  results.goals = printReport(results);
  writeFileSync('bench/results.json', JSON.stringify(results, null, 2) + '\n');
  cleanup();
  process.exit(0);
}

/** The gateway as production runs it, against a direct call and a bare proxy: the tables and the gateway's memory. */
async function productionShape({ upstream, streamUpstream, codexResponses, upstreams, codexBody, check }) {
  const bare = await child('scripts/bench/bare-proxy.mjs', [`http://127.0.0.1:${upstream.port}`]);
  const bareStream = await child('scripts/bench/bare-proxy.mjs', [`http://127.0.0.1:${streamUpstream.port}`]);
  const bareCodex = await child('scripts/bench/bare-proxy.mjs', [`http://127.0.0.1:${codexResponses.port}`]);

  const dataDir = mkdtempSync(join(tmpdir(), 'gw-bench-'));
  const pglite = process.env.BENCH_DATABASE_URL ? undefined : await child('dist/libs/db/src/embedded-postgres.main.js', [dataDir]);
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? pglite.url;
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
  const adminProc = spawn(process.execPath, [...appNodeFlags(), 'dist/apps/admin/src/main.js'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(adminProc);
  const adminOrigin = `http://127.0.0.1:${gwPort + 1}`;
  await waitReady(`${adminOrigin}/readyz`);
  // e.g. BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=bench/profiles" to profile the gateway under this load.
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // As `npm run start:gateway` runs it: with the apps' V8 flags (scripts/node-flags.mjs).
  const gw = spawn(process.execPath, [...appNodeFlags(), ...nodeArgs, 'dist/apps/gateway/src/main.js'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(gw);
  const gwOrigin = `http://127.0.0.1:${gwPort}`;
  await waitReady(`${gwOrigin}/readyz`);
  const secret = await configure(adminOrigin, upstreams);
  await sleep(1000); // the gateway's caches reload within CACHE_REFRESH_MS (500 ms)

  const json = { 'content-type': 'application/json', authorization: 'Bearer sk-bench' };
  const gwHeaders = { 'content-type': 'application/json', authorization: `Bearer ${secret}` };
  const chatPath = '/v1/chat/completions';
  // `pid`: the process (tree) whose CPU per request is reported (for the direct call, the upstream's own cost).
  const targets = [
    { name: 'direct', origin: `http://127.0.0.1:${upstream.port}`, path: chatPath, headers: json, pid: upstream.proc.pid },
    { name: 'bare-proxy', origin: `http://127.0.0.1:${bare.port}`, path: chatPath, headers: json, pid: bare.proc.pid },
    { name: 'gateway', origin: gwOrigin, path: chatPath, headers: gwHeaders, pid: gw.pid },
  ];
  // BENCH_TARGETS=gateway loads only the gateway (with BENCH_GATEWAY_NODE_ARGS, a clean profile); the ratios then
  // lack their baseline.
  const only = process.env.BENCH_TARGETS?.split(',');
  const measured = only ? targets.filter((t) => only.includes(t.name)) : targets;
  const rss = [];
  const sampler = setInterval(() => rss.push(treeMemoryMb(gw.pid).rss), 500);

  const rows = [];
  for (const c of CONCURRENCY) {
    for (const t of measured) rows.push({ target: t.name, concurrency: c, ...(await cell(t, SMALL, c, SECONDS, WARMUP)) });
  }

  // Streams: the same fake (20 chunks, 5 ms apart) directly, through the bare proxy and through the gateway.
  const streamVia = (origin, headers, body) => streams(origin, chatPath, headers, body, STREAMS, '"content":"H');
  const streamDirect = await streamVia(`http://127.0.0.1:${streamUpstream.port}`, json, STREAM_BODY);
  const streamBare = only && !only.includes('bare-proxy') ? undefined : await streamVia(`http://127.0.0.1:${bareStream.port}`, json, STREAM_BODY);
  const streamGw = await streamVia(gwOrigin, gwHeaders, STREAM_BODY.replace('gpt-4o-mini', 'stream-model'));
  const streaming = { chunks: 20, chunkDelayMs: 5, streams: STREAMS, direct: streamDirect, bareProxy: streamBare, gateway: streamGw };

  // Codex-shaped turns. Baseline for both: the bare proxy passing the same turn through to the Responses fake (a
  // bare proxy cannot translate; it is what moving this turn costs with no feature at all).
  const respPath = '/v1/responses';
  const bareCodexTarget = { origin: `http://127.0.0.1:${bareCodex.port}`, path: respPath, headers: codexHeaders('Bearer sk-bench'), pid: bareCodex.proc.pid };
  const gwCodex = { origin: gwOrigin, path: respPath, headers: codexHeaders(`Bearer ${secret}`), pid: gw.pid };
  const codexCells = [
    { workload: 'pass-through', target: 'bare-proxy', t: bareCodexTarget, body: codexBody('gpt-4o-mini') },
    { workload: 'pass-through', target: 'gateway', t: gwCodex, body: codexBody('codex-pass') },
    { workload: 'translation', target: 'gateway', t: gwCodex, body: codexBody('codex-chat') },
  ].filter((x) => !only || only.includes(x.target));
  const codexRows = [];
  for (const x of codexCells) {
    const r = await cell(x.t, x.body, CODEX.concurrency, CODEX.seconds, CODEX.warmup, check);
    codexRows.push({ workload: x.workload, target: x.target, concurrency: CODEX.concurrency, bodyBytes: Buffer.byteLength(x.body), ...r });
  }
  const codex = { ...CODEX, rows: codexRows };

  // Memory: the kernel's high-water mark (a peak sampling cannot miss), the samples, and RSS after 5 s idle.
  clearInterval(sampler);
  await sleep(5000);
  const gwTree = tree(gw.pid);
  const memory = {
    peakMb: gwTree.reduce((s, p) => s + peakRssMb(p), 0),
    // The goal is per gateway process: with workers, the largest one.
    peakProcessMb: Math.max(...gwTree.map(peakRssMb)),
    maxSampledMb: Math.max(...rss.filter(Number.isFinite)),
    afterLoadMb: treeMemoryMb(gw.pid).rss,
    processes: gwTree.length,
  };

  let soak;
  if (SOAK > 0) soak = await runSoak(gw.pid, gwOrigin, gwHeaders, gwCodex);

  const journalDir = join(dataDir, 'journal');
  const ledgerSeen = await sleep(2000).then(() => ledgerRequests(adminOrigin).catch((e) => `unreadable: ${e.message}`));
  const setup = {
    gateway: `dist/apps/gateway (its own process, as \`npm run start:gateway\` runs it; admin in another)${env.GATEWAY_WORKERS ? `, GATEWAY_WORKERS=${env.GATEWAY_WORKERS}` : ''}; ${memory.processes} process(es) in its tree`,
    database: process.env.BENCH_DATABASE_URL
      ? `PostgreSQL at ${new URL(process.env.BENCH_DATABASE_URL).host} (BENCH_DATABASE_URL), its own server`
      : 'PGlite in its own process (libs/db embedded-postgres.main, the Postgres wire protocol on loopback)',
    ledgerJournal: `on (${journalDir}, live journal directories at the end: ${existsSync(journalDir) ? readdirSync(journalDir).length : 0})`,
    ledger: ledgerCheck(ledgerSeen, answered.get(gwOrigin) ?? 0),
    limitsStore: process.env.BENCH_REDIS_URL ? `Redis at ${new URL(process.env.BENCH_REDIS_URL).host} (BENCH_REDIS_URL)` : 'in-process memory',
    logs: `JSON request logs at LOG_LEVEL=${env.LOG_LEVEL} (written to stdout, which the bench discards)`,
    features: 'virtual key with limits and budgets on the tenant and the key, priced models, metering, metrics, slow-client limits, egress policy',
  };
  await stop(gw);
  await stop(adminProc);
  // The database child ignores SIGTERM while its parent lives (a terminal's Ctrl-C reaches the whole group): it is asked to stop.
  if (pglite) await new Promise((r) => (pglite.proc.exitCode !== null ? r() : (pglite.proc.once('exit', r), pglite.proc.send('stop'))));
  for (const c of [bare, bareStream, bareCodex]) await stop(c.proc);
  rmSync(dataDir, { recursive: true, force: true });
  return { setup, seconds: SECONDS, warmupSeconds: WARMUP, rows, streaming, codex, memory, soak };
}

/** One ledger row per answer the gateway gave (refusals included): metering stayed on and lost nothing under load. */
function ledgerCheck(rows, answers) {
  if (typeof rows !== 'number') return `ledger ${rows}`;
  return `${rows} rows in usage_records for ${answers} answers from the gateway${rows === answers ? '' : ` (MISMATCH: ${rows - answers})`}`;
}

/** RSS after a warm-up under load vs at the end: small chat at 16 connections plus one Codex session of each kind. */
async function runSoak(pid, gwOrigin, gwHeaders, gwCodex) {
  const samples = [];
  const s = setInterval(() => samples.push(Math.round(treeMemoryMb(pid).rss)), 10_000);
  let startMb;
  const mark = setTimeout(() => (startMb = treeMemoryMb(pid).rss), SOAK_WARMUP * 1000);
  const total = SOAK_WARMUP + SOAK;
  await Promise.all([
    load(gwOrigin, '/v1/chat/completions', gwHeaders, SMALL, 16, total),
    load(gwCodex.origin, gwCodex.path, gwCodex.headers, codexTurnBody('codex-pass', CODEX.bodyBytes), 1, total),
    load(gwCodex.origin, gwCodex.path, gwCodex.headers, codexTurnBody('codex-chat', CODEX.bodyBytes), 1, total),
  ]);
  clearInterval(s);
  clearTimeout(mark);
  const endMb = treeMemoryMb(pid).rss;
  return {
    warmupSeconds: SOAK_WARMUP,
    seconds: SOAK,
    rssStartMb: startMb,
    rssEndMb: endMb,
    change: endMb / startMb - 1,
    rssMaxMb: Math.max(...samples),
    samplesMb: samples,
  };
}

main().catch((e) => {
  console.error(e);
  cleanup();
  process.exit(1);
});
