// `npm run lint`: ESLint (typescript-eslint strict, type-checked), Prettier's check, and the layering rule
// (dependency-cruiser, .dependency-cruiser.cjs). Runs all three even when one fails; exits 1 if any failed.
import { spawnSync } from 'node:child_process';

const steps = [
  ['eslint', ['node_modules/eslint/bin/eslint.js', '.', '--max-warnings=0']],
  ['prettier --check', ['node_modules/prettier/bin/prettier.cjs', '--check', '--log-level=warn', '.']],
  [
    'layering (dependency-cruiser)',
    ['node_modules/dependency-cruiser/bin/dependency-cruise.mjs', 'apps', 'libs', 'test', 'scripts', 'deploy', '--config', '.dependency-cruiser.cjs'],
  ],
];
const failed = [];
for (const [label, args] of steps) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  console.log(`${label}: ${r.status === 0 ? 'ok' : 'FAILED'} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (r.status !== 0) failed.push(label);
}
if (failed.length) console.log(`lint failed: ${failed.join(', ')}`);
process.exit(failed.length ? 1 : 0);
