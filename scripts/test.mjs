// `npm test`: typecheck, lint (scripts/lint.mjs: ESLint, Prettier, layering; run alongside the unit tests, its
// output printed after them; a failure counts as one failed), unit tests, then the medium and end-to-end suites on embedded PGlite and, when
// TEST_DATABASE_URL is set (CI sets it), again on a real PostgreSQL (and Redis when TEST_REDIS_URL is set).
// Ends with one line `N passed, N failed` summing every run.
//
// A skipped test is not a passed one. Every skip is listed. Under CI (CI set and not "false"), CI must provide
// PostgreSQL, Redis and Prometheus, so: TEST_DATABASE_URL and TEST_REDIS_URL must be set, the suites that need
// Redis or Prometheus fail instead of skipping (REQUIRE_REDIS=1, REQUIRE_PROMETHEUS=1), and the run on
// PostgreSQL + Redis (which has every dependency) fails on any skipped test.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const extra = process.argv.slice(2);
const out = mkdtempSync(join(tmpdir(), 'gw-test-'));
const ci = !!process.env.CI && process.env.CI !== 'false';
let passed = 0;
let failed = 0;
let ok = true;
const problems = [];

/** Test titles that did not run (skipped, todo), as `file › title`. */
function skippedOf(results) {
  const list = [];
  for (const file of results.testResults ?? []) {
    for (const a of file.assertionResults ?? []) {
      if (a.status === 'pending' || a.status === 'skipped' || a.status === 'todo' || a.status === 'disabled') {
        list.push(`${relative(process.cwd(), file.name)} › ${a.fullName ?? a.title}`);
      }
    }
  }
  return list;
}

function run(label, args, env = {}, { noSkips = false } = {}) {
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
    const skipped = skippedOf(j);
    if (skipped.length) {
      console.log(`\n${label}: ${skipped.length} test(s) SKIPPED (not passed):\n  ${skipped.join('\n  ')}`);
      if (noSkips) {
        failed += skipped.length;
        problems.push(`${label}: ${skipped.length} test(s) skipped, but under CI this run has every dependency and must run them all`);
      }
    }
  } catch {
    failed += 1;
  }
  if (r.status !== 0) ok = false;
}

if (ci) {
  for (const v of ['TEST_DATABASE_URL', 'TEST_REDIS_URL']) {
    if (!process.env[v]) problems.push(`CI is set but ${v} is not: CI must test against a real ${v === 'TEST_REDIS_URL' ? 'Redis' : 'PostgreSQL'}`);
  }
}

console.log('=== typecheck ===');
const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--noEmit'], { stdio: 'inherit' });
if (tsc.status !== 0) {
  ok = false;
  failed += 1;
}
// Lint takes ~40 s of CPU (type-aware rules): it runs beside the unit tests instead of before them. Its output goes
// to a file (not a pipe: the spawnSync runs below block this event loop) and is printed once the unit tests end.
const lintLog = join(out, 'lint.log');
const lintFd = openSync(lintLog, 'w');
const lintStarted = Date.now();
const lint = new Promise((resolve) => {
  spawn(process.execPath, ['scripts/lint.mjs'], { stdio: ['ignore', lintFd, lintFd] })
    .on('exit', (code) => resolve(code))
    .on('error', () => resolve(1));
});
run('unit', ['--selectProjects', 'unit'], {}, { noSkips: ci });
const lintCode = await lint;
closeSync(lintFd);
console.log(`\n=== lint (${((Date.now() - lintStarted) / 1000).toFixed(0)} s, alongside unit) ===`);
console.log(readFileSync(lintLog, 'utf8').trimEnd());
if (lintCode !== 0) {
  ok = false;
  failed += 1;
  problems.push('lint failed (npm run lint): see its output above');
}
const required = ci ? { REQUIRE_PROMETHEUS: '1' } : {};
// PGlite without Redis: the Redis cases skip here by design (they run in the PostgreSQL + Redis run).
const pgliteEnv = { TEST_DATABASE_URL: '', TEST_REDIS_URL: '', REQUIRE_REDIS: '', ...required };
// Suites about what travels on the wire to Codex and the providers (the database only holds their keys and
// routes) run once: in the PostgreSQL + Redis run when there is one (it has every dependency, and their
// replicas share limits there), else here; so do the ones about sockets and scraping, whatever the database
// (slow clients, a real Prometheus). Every suite that reads or writes state runs in both.
const WIRE_ONLY = [
  'codex-catalog',
  'codex-headers',
  'codex-websocket',
  'compaction',
  'ollama-names',
  'prometheus',
  'session-affinity',
  'slow-clients',
  'translation',
];
// About the embedded database itself (it starts its own PGlite whatever TEST_DATABASE_URL says): the PGlite run only.
const EMBEDDED_ONLY = ['embedded-postgres'];
const wireOnlyHere = process.env.TEST_DATABASE_URL ? ['--testPathIgnorePatterns', ...WIRE_ONLY.map((s) => `test/${s}\\.e2e-spec\\.ts$`)] : [];
run('e2e (PGlite)', ['--selectProjects', 'medium', 'e2e', '--runInBand', ...wireOnlyHere], pgliteEnv);
if (process.env.TEST_DATABASE_URL) {
  const full = !!process.env.TEST_REDIS_URL;
  run(
    'e2e (PostgreSQL)',
    ['--selectProjects', 'medium', 'e2e', '--runInBand', '--testPathIgnorePatterns', ...EMBEDDED_ONLY.map((s) => `test/${s}\\.e2e-spec\\.ts$`)],
    { ...required, ...(ci && full ? { REQUIRE_REDIS: '1' } : {}) },
    { noSkips: ci && full },
  );
}
for (const p of problems) console.log(`\n!!! ${p}`);
if (problems.length) ok = false;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(ok && failed === 0 ? 0 : 1);
