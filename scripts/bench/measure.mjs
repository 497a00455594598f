// What `npm run bench` measures with: a closed-loop load generator, sequential streams for time to first byte,
// and the CPU and memory of a process and its descendants, read from /proc (Linux; NaN elsewhere).
import { readdirSync, readFileSync } from 'node:fs';
import { Pool } from 'undici';

export function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Responses answered per origin (errors included), so the ledger's row count can be checked against them. */
export const answered = new Map();

/**
 * `c` workers on `c` keep-alive connections, each sending requests back to back for `seconds`. A response counts
 * as served once its whole body has arrived; `expect` (optional) checks the first body of the cell.
 */
export async function load(origin, path, headers, body, c, seconds, expect) {
  const pool = new Pool(origin, { connections: c, pipelining: 1, keepAliveTimeout: 30_000 });
  const lat = [];
  let errors = 0;
  let firstError;
  let checked = !expect;
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
          } else if (!checked) {
            checked = true;
            const problem = expect(await r.body.text());
            if (problem) {
              if (!errors++) firstError = `unexpected answer: ${problem}`;
            } else lat.push(performance.now() - t0);
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
  answered.set(origin, (answered.get(origin) ?? 0) + lat.length + errors);
  lat.sort((a, b) => a - b);
  if (firstError) console.error(`${origin}${path} at ${c} connections: ${errors} errors, first: ${firstError}`);
  return { rps: lat.length / seconds, p50: pct(lat, 50), p99: pct(lat, 99), n: lat.length, errors };
}

/** Sequential streams: time to the first byte of content (`marker` seen) and total time. */
export async function streams(origin, path, headers, body, n, marker) {
  const pool = new Pool(origin, { connections: 1 });
  const ttfb = [];
  const total = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await pool.request({ method: 'POST', path, headers, body });
    let first = 0;
    for await (const chunk of r.body) {
      if (!first && chunk.toString().includes(marker)) first = performance.now() - t0;
    }
    ttfb.push(first);
    total.push(performance.now() - t0);
  }
  await pool.close();
  answered.set(origin, (answered.get(origin) ?? 0) + n);
  ttfb.sort((a, b) => a - b);
  total.sort((a, b) => a - b);
  return { ttfbP50: pct(ttfb, 50), ttfbP99: pct(ttfb, 99), totalP50: pct(total, 50) };
}

// ── /proc ──

function stat(pid) {
  try {
    // After the command (in parentheses, may hold spaces): state is field 3, ppid 4, utime 14, stime 15.
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}

/** The process and every live descendant (a cluster's workers, `npm start`'s app and its database child). */
export function tree(pid) {
  const children = new Map();
  let entries = [];
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [pid];
  }
  for (const d of entries) {
    const s = stat(d);
    if (s) children.set(s.ppid, [...(children.get(s.ppid) ?? []), Number(d)]);
  }
  const out = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop();
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

function statusKb(pid, field) {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Resident memory of one process (MB). */
export const rssMb = (pid) => statusKb(pid, 'VmRSS') / 1024;
/** The kernel's own high-water mark of that process's resident memory (MB): a peak no sampling can miss. */
export const peakRssMb = (pid) => statusKb(pid, 'VmHWM') / 1024;

/** Proportional set size (MB): shared pages (the node binary, shared libraries) split between the processes using them. */
export function pssMb(pid) {
  try {
    const m = /Pss:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

const sum = (xs) => xs.filter(Number.isFinite).reduce((a, b) => a + b, 0);

/** RSS summed over a process tree (counts shared pages once per process: an upper bound) and its PSS (exact share). */
export function treeMemoryMb(pid) {
  const pids = tree(pid);
  return { rss: sum(pids.map(rssMb)), pss: sum(pids.map(pssMb)), processes: pids.length };
}

/** CPU seconds (user + system) the process tree has used so far, in clock ticks of 1/100 s (Linux's USER_HZ). */
export function cpuSeconds(pid) {
  const t = tree(pid).map((p) => stat(p)?.ticks);
  return t.some(Number.isFinite) ? sum(t) / 100 : NaN;
}

/** A short name for a process of a tree: its script, or its command. */
export function processLabel(pid) {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const script = argv.find((a, i) => i > 0 && !a.startsWith('-'));
    const name = argv[0]?.split('/').pop();
    return script ? `${name} ${script.replace(/^.*\/(dist|scripts|node_modules)\//, '$1/')}` : name;
  } catch {
    return String(pid);
  }
}
