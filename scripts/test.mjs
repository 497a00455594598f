// `npm test`: typecheck, unit tests, then the end-to-end suite on embedded PGlite and, when
// TEST_DATABASE_URL is set (CI sets it), again on a real PostgreSQL (and Redis when TEST_REDIS_URL is set).
// Ends with one line `N passed, N failed` summing every run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const extra = process.argv.slice(2);
const out = mkdtempSync(join(tmpdir(), 'gw-test-'));
let passed = 0;
let failed = 0;
let ok = true;

function run(label, args, env = {}) {
  console.log(`\n=== ${label} ===`);
  const file = join(out, `${label.replace(/\W+/g, '_')}.json`);
  const r = spawnSync(process.execPath, ['node_modules/jest/bin/jest.js', ...args, '--json', `--outputFile=${file}`, ...extra], {
    stdio: 'inherit',
    // PGlite loads its WASM with a dynamic import, which Jest's VM only allows with this flag.
    env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules --no-warnings`.trim(), ...env },
  });
  try {
    const j = JSON.parse(readFileSync(file, 'utf8'));
    passed += j.numPassedTests;
    failed += j.numFailedTests + j.numRuntimeErrorTestSuites;
    if (j.numTotalTests === 0) ok = false;
  } catch {
    failed += 1;
  }
  if (r.status !== 0) ok = false;
}

console.log('=== typecheck ===');
const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--noEmit'], { stdio: 'inherit' });
if (tsc.status !== 0) {
  ok = false;
  failed += 1;
}
run('unit', ['--selectProjects', 'unit']);
const pgliteEnv = { TEST_DATABASE_URL: '', TEST_REDIS_URL: '' };
run('e2e (PGlite)', ['--selectProjects', 'e2e', '--runInBand'], pgliteEnv);
if (process.env.TEST_DATABASE_URL) {
  run('e2e (PostgreSQL)', ['--selectProjects', 'e2e', '--runInBand'], {});
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(ok && failed === 0 ? 0 : 1);
