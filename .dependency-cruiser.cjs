// The layering of docs/architecture.md ("Folders": the "depends on" column), checked on every `npm test`:
// libs are imported only through their index.ts as @gw/<lib>; apps depend on libs, never the reverse; no cycles.
// A lib's allowed @gw/* imports below are that table; changing one is an architecture change: update the doc too.
/** lib → the libs it may import (tests excluded, as in the doc). */
const allowed = {
  config: ['common'], // types only: see the rule `config-common-types-only`
  common: [],
  db: ['config'],
  observability: ['config', 'common'],
  tenancy: ['common', 'db'],
  auth: ['common', 'config', 'db', 'tenancy'],
  providers: ['common', 'config', 'db'],
  routing: ['common', 'config', 'db', 'providers'],
  metering: ['common', 'config', 'db'],
  limits: ['common', 'config', 'db', 'metering', 'observability', 'tenancy'],
};
// Unit specs (*.spec.ts) and medium specs (*.medium-spec.ts) are tests: excluded from the lib table, as in the doc.
const spec = '\\.(medium-)?spec\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      // A cycle through an `import type` is erased by tsc: no load-order hazard at run time (metering's row type).
      comment: 'No import cycles (architecture.md: "no cycles"), except through type-only imports.',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'lib-only-through-index',
      severity: 'error',
      comment: 'A lib is imported from outside only as @gw/<lib> (its src/index.ts), never by a deep path.',
      // Jest's globalSetup runs without the @gw/* path mapping, so the template setup reaches libs/db by path.
      from: { path: '^(libs/[^/]+/|apps/[^/]+/|test/|scripts/|deploy/)', pathNot: '^test/support/template\\.global-setup\\.ts$' },
      to: { path: '^libs/[^/]+/src/', pathNot: ['^libs/[^/]+/src/index\\.ts$', '^$1'] },
    },
    {
      name: 'libs-not-to-apps',
      severity: 'error',
      comment: 'Apps depend on libs, never the reverse.',
      from: { path: '^libs/' },
      to: { path: '^apps/' },
    },
    {
      name: 'libs-not-to-test-support',
      severity: 'error',
      comment: 'Library code does not depend on the test helpers (@gw/testing); its specs may.',
      from: { path: '^libs/', pathNot: spec },
      to: { path: '^test/' },
    },
    {
      name: 'apps-not-to-each-other',
      severity: 'error',
      comment: 'The gateway and the admin app share code through libs only (apps/all-in-one composes them).',
      from: { path: '^apps/(gateway|admin)/' },
      to: { path: '^apps/', pathNot: '^apps/$1/' },
    },
    ...Object.entries(allowed).map(([lib, deps]) => ({
      name: `lib-${lib}-depends-on`,
      severity: 'error',
      comment: `libs/${lib} may import only: ${deps.length ? deps.join(', ') : 'no other lib'} (docs/architecture.md).`,
      from: { path: `^libs/${lib}/`, pathNot: spec },
      to: { path: '^libs/([^/]+)/', pathNot: `^libs/(${[lib, ...deps].join('|')})/` },
    })),
    {
      name: 'config-common-types-only',
      severity: 'error',
      comment: 'libs/config uses @gw/common for types only (ClientLimits): `import type`.',
      from: { path: '^libs/config/', pathNot: spec },
      to: { path: '^libs/common/', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    includeOnly: '^(apps|libs|test|scripts)/',
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)__fixtures__/' },
    // Resolve @gw/* through tsconfig paths, and see `import type` (erased by tsc) as a dependency too.
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.mjs', '.js', '.cjs', '.json'] },
  },
};
