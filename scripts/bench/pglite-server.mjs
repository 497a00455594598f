// Child process: embedded Postgres (PGlite over the wire protocol) for the benchmark, so the gateway
// process is measured on its own, as in production where the database is elsewhere.
const { startEmbeddedPostgres } = await import('../../dist/libs/db/src/embedded-postgres.js').then((m) => m.default ?? m);
const db = await startEmbeddedPostgres(process.argv[2]);
process.send?.({ url: db.url });
process.on('SIGTERM', () => db.stop().then(() => process.exit(0)));
