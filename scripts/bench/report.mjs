// The bench's output: its setup, the small-chat table, streams, the Codex-shaped rows, memory, `npm start`, and
// issue 16's goals (measured value, goal, met). Returns the goal rows for bench/results.json.
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const signed = (x, d = 2) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(d)}` : '-');
const by = (rows, target) => Object.fromEntries(rows.filter((r) => r.target === target).map((r) => [r.concurrency, r]));

function smallChat(rows) {
  const direct = by(rows, 'direct');
  const bare = by(rows, 'bare-proxy');
  for (const r of rows) {
    const d = direct[r.concurrency];
    const b = bare[r.concurrency];
    Object.assign(r, {
      overheadP50Ms: r.p50 - d?.p50,
      overheadP99Ms: r.p99 - d?.p99,
      vsBareP50Ms: r.p50 - b?.p50,
      vsBareP99Ms: r.p99 - b?.p99,
      vsBareProxy: r.rps / b?.rps,
      cpuVsBareProxy: r.cpuUsPerReq / b?.cpuUsPerReq,
    });
  }
  console.log('\n### Small chat (`/v1/chat/completions`, non-streamed)\n');
  console.log(
    '| target | conc. | req/s | p50 ms | p99 ms | +p50 ms vs direct | +p99 ms vs direct | +p50 ms vs bare proxy | +p99 ms vs bare proxy | throughput vs bare proxy | CPU µs/req | CPU vs bare proxy |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const rel = r.target === 'gateway';
    console.log(
      `| ${r.target} | ${r.concurrency} | ${f(r.rps, 0)} | ${f(r.p50)} | ${f(r.p99)} | ${r.target === 'direct' ? '' : f(r.overheadP50Ms)} | ${r.target === 'direct' ? '' : f(r.overheadP99Ms)} | ${rel ? f(r.vsBareP50Ms) : ''} | ${rel ? f(r.vsBareP99Ms) : ''} | ${f(r.vsBareProxy)} | ${f(r.cpuUsPerReq, 0)} | ${rel ? f(r.cpuVsBareProxy) : ''} |`,
    );
  }
}

function streaming(s) {
  const over = (x) => ({ p50: x?.ttfbP50 - s.direct.ttfbP50, p99: x?.ttfbP99 - s.direct.ttfbP99 });
  s.bareProxyTtfbOverhead = over(s.bareProxy);
  s.gatewayTtfbOverhead = over(s.gateway);
  s.gatewayAfterFirstByteMs = s.gateway.totalP50 - s.gateway.ttfbP50 - (s.direct.totalP50 - s.direct.ttfbP50);
  console.log(
    `\nstreaming (${s.streams} sequential streams of ${s.chunks} chunks, ${s.chunkDelayMs} ms apart): TTFB p50 direct ${f(s.direct.ttfbP50)} ms, bare proxy ${f(s.bareProxy?.ttfbP50)} ms (${signed(s.bareProxyTtfbOverhead.p50)}), gateway ${f(s.gateway.ttfbP50)} ms (${signed(s.gatewayTtfbOverhead.p50)} ms, p99 ${signed(s.gatewayTtfbOverhead.p99)} ms); after the first byte the gateway adds ${f(s.gatewayAfterFirstByteMs)} ms per whole stream`,
  );
}

function codex(c) {
  const bare = c.rows.find((r) => r.target === 'bare-proxy');
  for (const r of c.rows) Object.assign(r, { vsBareProxy: r.rps / bare?.rps, cpuVsBareProxy: r.cpuUsPerReq / bare?.cpuUsPerReq });
  console.log(
    `\n### Codex-shaped \`/v1/responses\` turns (${f(c.rows[0]?.bodyBytes / 1000, 0)} kB history with tools, ${c.deltas} streamed deltas; the bare proxy passes the same turn through)\n`,
  );
  console.log('| workload | target | conc. | req/s | p50 ms | p99 ms | throughput vs bare proxy | CPU µs/turn | CPU vs bare proxy |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of c.rows) {
    console.log(
      `| ${r.workload} | ${r.target} | ${r.concurrency} | ${f(r.rps, 0)} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.vsBareProxy)} | ${f(r.cpuUsPerReq, 0)} | ${f(r.cpuVsBareProxy)} |`,
    );
  }
}

function memory(m, soak) {
  console.log(
    `\ngateway RSS: peak ${f(m.peakMb, 0)} MB (the kernel's high-water mark; highest sample ${f(m.maxSampledMb, 0)} MB), ${f(m.afterLoadMb, 0)} MB after the load (5 s idle)` +
      (m.processes > 1 ? `; ${m.processes} processes, summed (the largest peaked at ${f(m.peakProcessMb, 0)} MB)` : ''),
  );
  if (soak) {
    console.log(
      `soak (small chat at 16 connections + one Codex session of each kind): RSS after the ${soak.warmupSeconds} s warm-up ${f(soak.rssStartMb, 0)} MB, after ${soak.seconds} s more ${f(soak.rssEndMb, 0)} MB (${signed(100 * soak.change, 1)} %, max ${f(soak.rssMaxMb, 0)} MB); samples every 10 s: ${soak.samplesMb.join(' ')}`,
    );
  }
}

function npmStart(n) {
  if (!n) return;
  console.log(
    `\n\`npm start\` (all-in-one: gateway + admin + embedded PGlite), RSS of the app's processes: peak ${f(n.peak.appMb, 0)} MB (${f(n.peak.startAppMb, 0)} MB while starting, ${f(n.peak.loadAppMb, 0)} MB under load; high-water marks summed ${f(n.appHighWaterSumMb, 0)} MB), idle after start ${f(n.idle.appMb, 0)} MB, after the load ${f(n.afterLoad.appMb, 0)} MB (PSS ${f(n.afterLoad.appPssMb, 0)} MB); with npm, sh and scripts/start.mjs: peak ${f(n.peak.allMb, 0)} MB; ready in ${f(n.startupSeconds, 1)} s`,
  );
  console.log(`  processes after the load: ${n.processes.map((p) => `${p.label} ${f(p.rssMb, 0)} MB${p.inApp ? '' : ' (launcher)'}`).join('; ')}`);
  const l = n.loads;
  console.log(
    `  under load: small chat c=64 ${f(l.smallChatC64.rps, 0)} req/s, Codex pass-through ${f(l.codexPassThrough.rps, 0)} turns/s, translation ${f(l.codexTranslation.rps, 0)} turns/s`,
  );
}

function goals(r) {
  const rows = r.rows ?? [];
  const top = rows.length ? Math.max(...rows.map((x) => x.concurrency)) : 64;
  const gw = by(rows, 'gateway')[top];
  const codexGw = (w) => r.codex?.rows.find((x) => x.target === 'gateway' && x.workload === w);
  const row = (goal, measured, target, met) => ({ goal, measured, target, met: met === undefined ? 'not measured' : met ? 'met' : 'not met' });
  const known = (x, test) => (Number.isFinite(x) ? test(x) : undefined);
  const out = [
    row(
      `small chat c=${top}: throughput vs bare proxy`,
      `${f(100 * gw?.vsBareProxy, 0)} %`,
      '≥ 70 %',
      known(gw?.vsBareProxy, (x) => x >= 0.7),
    ),
    row(
      `small chat c=${top}: p50 vs bare proxy`,
      `${signed(gw?.vsBareP50Ms)} ms`,
      '≤ +1 ms',
      known(gw?.vsBareP50Ms, (x) => x <= 1),
    ),
    row(
      `small chat c=${top}: p99 vs bare proxy`,
      `${signed(gw?.vsBareP99Ms)} ms`,
      '≤ +5 ms',
      known(gw?.vsBareP99Ms, (x) => x <= 5),
    ),
    row(
      `small chat c=${top}: CPU per request vs bare proxy`,
      `${f(gw?.cpuVsBareProxy)}×`,
      '≤ 1.5×',
      known(gw?.cpuVsBareProxy, (x) => x <= 1.5),
    ),
    row(
      'stream TTFB overhead (p50, vs direct)',
      `${signed(r.streaming?.gatewayTtfbOverhead?.p50)} ms`,
      '< 2 ms',
      known(r.streaming?.gatewayTtfbOverhead?.p50, (x) => x < 2),
    ),
    row(
      'Codex pass-through: CPU per turn vs bare proxy',
      `${f(codexGw('pass-through')?.cpuVsBareProxy)}×`,
      '≤ 1.5×',
      known(codexGw('pass-through')?.cpuVsBareProxy, (x) => x <= 1.5),
    ),
    row(
      'Codex translation: CPU per turn vs bare proxy',
      `${f(codexGw('translation')?.cpuVsBareProxy)}×`,
      '≤ 2×',
      known(codexGw('translation')?.cpuVsBareProxy, (x) => x <= 2),
    ),
    row(
      'gateway process RSS, peak',
      `${f(r.memory?.peakProcessMb, 0)} MB`,
      '< 150 MB',
      known(r.memory?.peakProcessMb, (x) => x < 150),
    ),
    r.soak
      ? row(
          `gateway RSS over a ${r.soak.seconds} s soak after ${r.soak.warmupSeconds} s`,
          `${signed(100 * r.soak.change, 1)} %`,
          'within ±10 %',
          known(r.soak.change, (x) => Math.abs(x) <= 0.1),
        )
      : row('gateway RSS over a soak', 'not run (BENCH_SOAK_SECONDS=600)', 'within ±10 %', undefined),
    r.npmStart
      ? row(
          '`npm start` total memory (gateway + admin + embedded database), peak',
          `${f(r.npmStart.peak.appMb, 0)} MB`,
          '< 400 MB',
          known(r.npmStart.peak.appMb, (x) => x < 400),
        )
      : row('`npm start` total memory', 'not run (BENCH_NPM_START=0)', '< 400 MB', undefined),
  ];
  console.log('\n### Goals (issue 16)\n');
  console.log('| goal | measured | target | |');
  console.log('|---|---:|---:|---|');
  for (const g of out) console.log(`| ${g.goal} | ${g.measured} | ${g.target} | ${g.met} |`);
  return out;
}

export function printReport(r) {
  console.log('\n### Setup\n');
  console.log(`- commit: ${r.commit}`);
  for (const [k, v] of Object.entries(r.setup ?? {})) console.log(`- ${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  console.log(
    `- machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memGb} GB, Node ${r.machine.node}, load average ${f(r.machine.loadAverageAtStart, 1)} at the start and ${f(r.machine.loadAverageAtEnd, 1)} at the end (the bench itself loads every core)` +
      (r.rows ? `; small chat ${r.seconds} s per cell after ${r.warmupSeconds} s warm-up, Codex rows ${r.codex.seconds} s after ${r.codex.warmup} s` : ''),
  );
  if (r.rows) {
    smallChat(r.rows);
    streaming(r.streaming);
  }
  console.log(
    `pre-body authentication: ${f(r.preBodyAuth.validKeyCpuUs)} µs CPU per request with a valid key, ${f(r.preBodyAuth.unknownKeyCpuUs)} µs per unknown key (${r.preBodyAuth.keys} keys in memory, ${r.preBodyAuth.heapBytesPerKey} bytes of heap per key)`,
  );
  if (r.rows) {
    codex(r.codex);
    memory(r.memory, r.soak);
  }
  npmStart(r.npmStart);
  return goals(r);
}
