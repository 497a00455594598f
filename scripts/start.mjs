// `npm start` [gateway|admin]: build, then run. With no argument, gateway and admin share one process; without
// DATABASE_URL the app starts the embedded PGlite as a child process of its own (libs/db embedded-postgres.main.ts).
import { spawn, spawnSync } from 'node:child_process';
import { appNodeFlags } from './node-flags.mjs';

const app = process.argv[2] ?? 'all-in-one';
if (!['all-in-one', 'gateway', 'admin'].includes(app)) {
  console.error(`unknown app "${app}": use gateway, admin or nothing`);
  process.exit(2);
}
const build = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
// The V8 flags that keep the app's memory low (scripts/node-flags.mjs).
const child = spawn(process.execPath, [...appNodeFlags(), `dist/apps/${app}/src/main.js`], { stdio: 'inherit' });

// Signals reach the app so that it drains and flushes its ledger; we wait for it and exit with its code.
// One signal often arrives more than once: Ctrl-C reaches every process of the terminal's foreground group
// (the app included), npm forwards what it gets to us, systemd signals the whole control group. So copies
// of one signal within a second are forwarded once, and the app itself counts copies within a second of
// each other as one and ignores repeats while it drains (installGracefulShutdown): a single Ctrl-C or
// SIGTERM is never taken for an impatient second one. Forwarding SIGINT too covers `kill -INT` on this
// process alone (a supervisor, a background job), which the app would otherwise never see.
const lastForwarded = {};
function forward(sig) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const now = Date.now();
  if (now - (lastForwarded[sig] ?? 0) < 1000) return;
  lastForwarded[sig] = now;
  child.kill(sig);
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => forward(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
