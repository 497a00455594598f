// `npm run openapi`: builds, then writes docs/openapi.json from the admin app's decorators. No database
// is needed (Nest preview mode); test/openapi.e2e-spec.ts fails when the committed file is stale.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

process.chdir(fileURLToPath(new URL('..', import.meta.url)));
const build = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const require = createRequire(import.meta.url);
require('reflect-metadata');
const { generateOpenApi, openApiJson } = require('../dist/apps/admin/src/openapi.js');
writeFileSync('docs/openapi.json', openApiJson(await generateOpenApi()));
console.log('wrote docs/openapi.json');
