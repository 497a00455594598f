// `npm start` [gateway|admin]: build, then run. With no argument, gateway and admin share one process.
import { spawn, spawnSync } from 'node:child_process';

const app = process.argv[2] ?? 'all-in-one';
if (!['all-in-one', 'gateway', 'admin'].includes(app)) {
  console.error(`unknown app "${app}": use gateway, admin or nothing`);
  process.exit(2);
}
const build = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const child = spawn(process.execPath, ['--enable-source-maps', `dist/apps/${app}/src/main.js`], { stdio: 'inherit' });
// Forward signals so that the app drains and flushes its ledger; exit with its code.
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
