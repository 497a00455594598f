/**
 * Where the run's migrated template lives, set by template.global-setup.ts and read by the per-file helpers
 * (jest's workers inherit the parent's environment, and globalSetup runs before any worker starts).
 * PostgreSQL: the template database's name on TEST_DATABASE_URL's server. PGlite: a directory holding `pg/`.
 */
export const TEMPLATE_DB_ENV = 'GW_TEST_TEMPLATE_DB';
export const TEMPLATE_DIR_ENV = 'GW_TEST_TEMPLATE_DIR';
