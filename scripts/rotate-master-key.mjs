// `npm run rotate-master-key -- --new <base64>` (or --generate): re-seals every provider credential with a
// new master key in one transaction. Builds like `npm start`, then runs the compiled entry point.
// Stop the gateway and admin processes first; start them again with the new key.
import { spawnSync } from 'node:child_process';

const build = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const r = spawnSync(process.execPath, ['--enable-source-maps', 'dist/libs/providers/src/rotate-master-key.main.js', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
