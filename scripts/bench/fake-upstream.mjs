// Child process: the project's fake provider with a fixed small latency, for the benchmark.
const mod = await import('../../dist/test/support/fake-provider.js');
const { FakeProvider } = mod.default ?? mod;
const [latencyMs = '2', chunkDelayMs = '0', streamChunks = '5'] = process.argv.slice(2);
const fake = await FakeProvider.start({
  flavor: 'openai',
  latencyMs: Number(latencyMs),
  chunkDelayMs: Number(chunkDelayMs),
  streamChunks: Number(streamChunks),
});
// The fake records every request for tests; a benchmark must not grow memory with it.
setInterval(() => (fake.received.length = 0), 1000).unref();
process.send?.({ port: fake.port });
process.on('SIGTERM', () => fake.close().then(() => process.exit(0)));
