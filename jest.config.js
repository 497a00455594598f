// Three projects: `unit` (pure logic, fast), `medium` (services and repositories against a real database of the
// file's own, copied from a template migrated once per run) and `e2e` (real HTTP servers, real Postgres/PGlite,
// real clients).
const { compilerOptions } = require('./tsconfig.json');
const moduleNameMapper = {};
for (const [alias, [target]] of Object.entries(compilerOptions.paths)) {
  moduleNameMapper[`^${alias}$`] = `<rootDir>/${target}`;
}
const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    {
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true },
        target: 'es2022',
      },
      module: { type: 'commonjs' },
    },
  ],
};
const common = { rootDir: __dirname, transform, moduleNameMapper, testEnvironment: 'node' };
// Migrates the run's template database once (TEST_DATABASE_URL's server, else a PGlite directory).
const template = {
  globalSetup: '<rootDir>/test/support/template.global-setup.ts',
  globalTeardown: '<rootDir>/test/support/template.global-teardown.ts',
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs,scripts,deploy}/**/*.spec.ts'] },
    { ...common, ...template, displayName: 'medium', testMatch: ['<rootDir>/{apps,libs}/**/*.medium-spec.ts'] },
    { ...common, ...template, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
};
