// `node scripts/bench/profile-summary.mjs <file.cpuprofile>`: self time by function and by package,
// to see where the gateway spends its time under `npm run bench` load.
import { readFileSync } from 'node:fs';

const prof = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = prof.timeDeltas;
for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (dt[i] ?? 0));
// Shares of busy time: idle is reported once, then left out so the rest adds up to what the CPU did.
const all = [...self.values()].reduce((a, b) => a + b, 0);
const idle = [...self].filter(([id]) => byId.get(id).callFrame.functionName === '(idle)').reduce((a, [, us]) => a + us, 0);
const total = all - idle;
console.log(`idle ${((100 * idle) / all).toFixed(1)}% of ${(all / 1e6).toFixed(1)} s; below, shares of the busy ${(total / 1e6).toFixed(1)} s`);
const fn = new Map();
const pkg = new Map();
for (const [id, us] of self) {
  const n = byId.get(id);
  if (n.callFrame.functionName === '(idle)') continue;
  const url = n.callFrame.url || '(native)';
  const name = `${n.callFrame.functionName || '(anon)'} ${url.replace(/^.*\/work\/main\//, '')}:${n.callFrame.lineNumber + 1}`;
  fn.set(name, (fn.get(name) ?? 0) + us);
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  const p = m
    ? m[1]
    : url.includes('/dist/')
      ? 'ours: ' +
        url
          .replace(/^.*\/dist\//, '')
          .split('/')
          .slice(0, 3)
          .join('/')
      : url.startsWith('node:')
        ? 'node: ' + url.slice(5).split('/')[0]
        : n.callFrame.functionName.startsWith('(')
          ? n.callFrame.functionName
          : '(native/other)';
  pkg.set(p, (pkg.get(p) ?? 0) + us);
}
const show = (title, m, k) => {
  console.log(`\n${title}`);
  for (const [name, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, k)) console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`);
};
show('self time by package', pkg, 25);
show('self time by function', fn, 30);
